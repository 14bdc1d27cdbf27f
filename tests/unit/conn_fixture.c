/*
 * Scaffolding shared by the connection unit tests (see conn_fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_fixture.h"
#include "engine.h"
#include "conn.h"
#include "fake_backend.h"

uint16_t cfx_be16(uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	uint16_t r;

	memcpy(&r, b, sizeof(r));
	return r;
}

void cfx_loopback4(struct sockaddr_in *sa, uint16_t port)
{
	static const unsigned char loop4[4] = { 127, 0, 0, 1 };

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = cfx_be16(port);
	memcpy(&sa->sin_addr, loop4, sizeof(loop4));
}

void cfx_loopback6(struct sockaddr_in6 *sa, uint16_t port)
{
	static const unsigned char loop6[16] = { [15] = 1 };

	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = cfx_be16(port);
	memcpy(&sa->sin6_addr, loop6, sizeof(loop6));
}

/* See conn_fixture.h. */
struct sockaddr_storage cfx_doc6(unsigned char last)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
	static const unsigned char doc[4] = { 0x20, 0x01, 0x0d, 0xb8 };

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	memcpy(&in6->sin6_addr, doc, 4);
	((unsigned char *)&in6->sin6_addr)[15] = last;
	return ss;
}

/* See conn_fixture.h. */
struct sockaddr_storage cfx_doc4(unsigned char last)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;
	unsigned char a[4] = { 192, 0, 2, last };

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	memcpy(&in->sin_addr, a, 4);
	return ss;
}

struct iocx_connect_request cfx_request(const struct sockaddr_in *to,
					iocx_connect_cb on_connect,
					iocx_close_cb on_close, void *user)
{
	struct iocx_connect_request r = {
		.remote = (const struct sockaddr *)to,
		.remote_len = sizeof(*to),
		.on_connect = on_connect,
		.on_close = on_close,
		.user = user,
	};

	return r;
}

int cfx_engine_create(const struct iocx_engine_options *o, iocx_engine **e)
{
	return iocx__engine_create_with(&fake_backend, o, IOCX__ENGINE_MANUAL,
					e);
}

bool cfx_engine_abandon(iocx_engine **e, bool in_engine)
{
	if (*e == NULL)
		return true;
	if (!in_engine && !fake_poisoned())
		return false;
	/*
	 * A failed assertion jumped out of a callback without clearing the
	 * connection it ran for (src/conn.c): clear it, so that one failure
	 * does not turn every later destroy into IOCX_E_INCALLBACK.
	 */
	iocx__current_conn = NULL;
	*e = NULL;
	return true;
}

int cfx_teardown(iocx_engine **e, void *sentinel, unsigned engines,
		 bool in_engine)
{
	test_free(sentinel);
	if (cfx_engine_abandon(e, in_engine))
		return 0;
	return cfx_engine_destroy(e, engines);
}

int cfx_engine_destroy(iocx_engine **e, unsigned engines)
{
	int rc = iocx_engine_destroy(*e);

	*e = NULL;
	return rc == IOCX_OK && fake_engines() == engines ? 0 : -1;
}

int cfx_teardown_engine(iocx_engine **e, unsigned engines, bool in_engine)
{
	if (cfx_engine_abandon(e, in_engine))
		return 0;
	fake_set_cancel_completes(true);
	return cfx_engine_destroy(e, engines);
}

void cfx_complete_connect(iocx_engine *e, iocx_conn *c, int status,
			  uint32_t os_code)
{
	fake_complete(c, status, os_code, 0);
	/* cmocka matches expectations by the callback's name only. */
	expect_value(cb_connect, status, status);
	fake_pump(e);
}

int cfx_group_teardown(void **state)
{
	(void)state;
	fake_cleanup();
	return 0;
}

#define STAT(f)								\
	do {								\
		if (got.f != want->f) {					\
			print_error("stats." #f " = %llu, want %llu\n",	\
				    (unsigned long long)got.f,		\
				    (unsigned long long)want->f);	\
			same = false;					\
		}							\
	} while (0)

void cfx_check_stats_(iocx_engine *e, const struct iocx_stats *want,
		      bool with_retries, const char *file, int line)
{
	struct iocx_stats got;
	bool same = true;
	int i;

	assert_int_equal(iocx_engine_stats(e, &got), IOCX_OK);
	STAT(connects_started);
	STAT(connects_ok);
	STAT(connects_failed);
	STAT(connects_cancelled);
	STAT(payload_bytes);
	STAT(fastopen_used);
	if (with_retries) {
		STAT(retries);
		STAT(same_socket_retries);
		STAT(same_socket_fallbacks);
	}
	STAT(closed);
	STAT(in_flight);
	STAT(open);
	STAT(unreleased);
	for (i = 0; i < IOCX_ERROR_COUNT; i++)
		STAT(errors[i]);
	if (!same)
		_fail(file, line);
}
