/*
 * A scripted resolver for unit tests (struct iocx_resolver): per family,
 * an answer (addresses, or an error) given at a scripted time on the
 * test's clock, or silence.  The test calls sres_deliver() as its clock
 * moves; cancel answers IOCX_E_CANCELLED at once, from inside cancel.
 * One query per family at a time; only for one test thread.
 */
#ifndef IOCX_TEST_SCRIPT_RESOLVER_H
#define IOCX_TEST_SCRIPT_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>

#include "iocx.h"
#include "conn.h"		/* the platform's socket headers */

#define SRES_MAX_ADDRS 8

struct sres_family {
	/* The script. */
	bool scripted;			/* else silent */
	uint64_t at_ms;
	int status;
	uint32_t os_code;
	struct sockaddr_storage addrs[SRES_MAX_ADDRS];
	size_t n;
	uint32_t ttl_s;			/* given with the answer, 0 = none */
	/* What happened. */
	iocx_query *q;			/* the query out, NULL = none */
	unsigned starts, cancels, answers;	/* starts that succeeded */
	unsigned refused;		/* starts failed by fail_start */
	int last_status;		/* of the last answer given */
	char host[IOCX_MAX_HOST + 1];	/* of the last start */
};

struct sres {
	struct iocx_resolver ops;	/* give &ops to the engine */
	struct sres_family fam[2];	/* [0] AF_INET6, [1] AF_INET */
	/* The next fail_starts starts return fail_code, start nothing. */
	int fail_code;
	unsigned fail_starts;
};

void sres_init(struct sres *r);

/* family's query is answered at at_ms with status and addrs[0..n). */
void sres_answer(struct sres *r, int family, uint64_t at_ms, int status,
		 uint32_t os_code, const struct sockaddr_storage *addrs,
		 size_t n);

/* The state of family's query (family AF_INET6 or AF_INET). */
struct sres_family *sres_family(struct sres *r, int family);

/* Answer every query out whose time is now_ms or earlier; returns how
 * many answers were given. */
unsigned sres_deliver(struct sres *r, uint64_t now_ms);

#endif /* IOCX_TEST_SCRIPT_RESOLVER_H */
