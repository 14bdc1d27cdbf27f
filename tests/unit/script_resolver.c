/*
 * The scripted resolver (see script_resolver.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "script_resolver.h"

/* See script_resolver.h. */
struct sres_family *sres_family(struct sres *r, int family)
{
	assert_true(family == AF_INET6 || family == AF_INET);
	return &r->fam[family == AF_INET6 ? 0 : 1];
}

static int sres_start(void *ctx, const char *host, int family,
		      iocx_query *q)
{
	struct sres *r = ctx;
	struct sres_family *f = sres_family(r, family);

	assert_non_null(q);
	assert_true(strlen(host) <= IOCX_MAX_HOST);
	strcpy(f->host, host);
	if (r->fail_starts > 0) {
		r->fail_starts--;
		f->refused++;
		return r->fail_code;
	}
	f->starts++;
	assert_null(f->q);	/* one query per family at a time */
	f->q = q;
	return IOCX_OK;
}

static void answer(struct sres_family *f, int status, uint32_t os_code,
		   const struct sockaddr_storage *addrs, size_t n,
		   uint32_t ttl_s)
{
	iocx_query *q = f->q;

	f->q = NULL;
	f->answers++;
	f->last_status = status;
	if (ttl_s)
		iocx_query_done_ttl(q, status, os_code, addrs, n, ttl_s);
	else
		iocx_query_done(q, status, os_code, addrs, n);
}

static void sres_cancel(void *ctx, iocx_query *q)
{
	struct sres *r = ctx;

	for (int i = 0; i < 2; i++) {
		struct sres_family *f = &r->fam[i];

		if (f->q != q)
			continue;
		f->cancels++;
		answer(f, IOCX_E_CANCELLED, 0, NULL, 0, 0);
		return;
	}
	fail_msg("cancel of a query the resolver does not have");
}

/* See script_resolver.h. */
void sres_init(struct sres *r)
{
	memset(r, 0, sizeof(*r));
	r->ops.ctx = r;
	r->ops.start = sres_start;
	r->ops.cancel = sres_cancel;
}

/* See script_resolver.h. */
void sres_answer(struct sres *r, int family, uint64_t at_ms, int status,
		 uint32_t os_code, const struct sockaddr_storage *addrs,
		 size_t n)
{
	struct sres_family *f = sres_family(r, family);

	assert_true(n <= SRES_MAX_ADDRS);
	f->scripted = true;
	f->at_ms = at_ms;
	f->status = status;
	f->os_code = os_code;
	f->n = n;
	if (n > 0)
		memcpy(f->addrs, addrs, n * sizeof(addrs[0]));
}

/* See script_resolver.h. */
unsigned sres_deliver(struct sres *r, uint64_t now_ms)
{
	unsigned given = 0;

	for (int i = 0; i < 2; i++) {
		struct sres_family *f = &r->fam[i];

		if (!f->q || !f->scripted || f->at_ms > now_ms)
			continue;
		answer(f, f->status, f->os_code, f->addrs, f->n, f->ttl_s);
		given++;
	}
	return given;
}
