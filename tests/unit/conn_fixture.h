/*
 * Scaffolding shared by the unit tests that drive connections through the
 * public API on a manual engine over the fake backend (test_conn.c,
 * test_conn_deadline.c, test_data.c, test_conn_recycle.c): the loopback
 * remote, engine creation and the teardown's destroy-or-abandon decision,
 * and the stats comparison.
 *
 * What differs between those files stays in them: their probes and
 * callbacks, the allocator hooks (alloc_hooks.h is static per program) and
 * what a teardown does before it destroys the engine.
 *
 * Like the fake backend, only for one test thread.
 */
#ifndef IOCX_TEST_CONN_FIXTURE_H
#define IOCX_TEST_CONN_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "iocx.h"
#include "conn.h"		/* sockaddr_in(6): the platform's headers */

/* v in network byte order, without the platform's socket headers. */
uint16_t cfx_be16(uint16_t v);

/* Set *sa to 127.0.0.1:port (and zero the rest). */
void cfx_loopback4(struct sockaddr_in *sa, uint16_t port);
/* Set *sa to [::1]:port (and zero the rest). */
void cfx_loopback6(struct sockaddr_in6 *sa, uint16_t port);

/* Documentation addresses without a port: 192.0.2.last (RFC 5737) and
 * 2001:db8::last (RFC 3849), the rest zero. */
struct sockaddr_storage cfx_doc4(unsigned char last);
struct sockaddr_storage cfx_doc6(unsigned char last);

/* A request to connect to *to with these callbacks and user; the rest 0. */
struct iocx_connect_request cfx_request(const struct sockaddr_in *to,
					iocx_connect_cb on_connect,
					iocx_close_cb on_close, void *user);

/*
 * Create a manual engine (IOCX__ENGINE_MANUAL: no workers, the test pumps
 * it) over the fake backend with options o; returns what the engine's
 * create returned.  The call log still holds the engine's own calls.
 */
int cfx_engine_create(const struct iocx_engine_options *o, iocx_engine **e);

/*
 * For a teardown: true when there is no engine to destroy, because *e is
 * NULL already or because a failure jumped out of it (in_engine: out of a
 * callback or another call into the engine; or the fake saw a contract
 * violation).  Its locks may then be held, so *e is set to NULL without
 * destroying it and the current connection is forgotten.
 */
bool cfx_engine_abandon(iocx_engine **e, bool in_engine);

/*
 * Destroy *e and set it to NULL; 0 when that succeeded and the fake
 * engines alive are back to engines, -1 otherwise (a teardown's result).
 */
int cfx_engine_destroy(iocx_engine **e, unsigned engines);

/*
 * The end of a teardown: unless cfx_engine_abandon() says to leave *e
 * alone (in_engine), let the fake complete cancels again and destroy *e
 * (cfx_engine_destroy's result).  The caller makes its callbacks lenient
 * first: a failed test may have left connections behind.
 */
int cfx_teardown_engine(iocx_engine **e, unsigned engines, bool in_engine);

/*
 * A whole teardown for a fixture that keeps a test_malloc'd sentinel (see
 * test_conn_deadline.c): free it, then destroy *e as cfx_engine_destroy
 * does unless cfx_engine_abandon says to leave it (in_engine).
 */
int cfx_teardown(iocx_engine **e, void *sentinel, unsigned engines,
		 bool in_engine);

/*
 * Complete c's connect in flight with status and os_code (no bytes), and
 * pump e: the test expects exactly one on_connect(status), which its
 * callback named cb_connect checks with check_expected(status).
 */
void cfx_complete_connect(iocx_engine *e, iocx_conn *c, int status,
			  uint32_t os_code);

/* A cmocka group teardown: release the fake's capture buffers. */
int cfx_group_teardown(void **state);

/*
 * Compare e's stats with want and fail the test at file:line, after
 * printing every field that differs.  The compared fields are the connect
 * counters, payload_bytes, fastopen_used, closed, in_flight, open,
 * unreleased and errors[], plus retries and the same-socket counters if
 * with_retries.
 */
void cfx_check_stats_(iocx_engine *e, const struct iocx_stats *want,
		      bool with_retries, const char *file, int line);
#define cfx_check_stats(e, with_retries, ...)				\
	cfx_check_stats_((e), &(const struct iocx_stats){ __VA_ARGS__ },	\
			 (with_retries), __FILE__, __LINE__)

#endif /* IOCX_TEST_CONN_FIXTURE_H */
