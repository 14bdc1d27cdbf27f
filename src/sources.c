/*
 * Source addresses (engine option sources): validated and copied when the
 * engine is created, and handed out round robin, one per attempt, to
 * connections that bring no local address of their own.
 */
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

#include "conn.h"

/* Length of an AF_INET / AF_INET6 address. */
static int family_length(int family)
{
	return family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
				  : (int)sizeof(struct sockaddr_in);
}

/* See conn.h. */
int iocx__conn_open(struct iocx_conn *c)
{
	struct iocx_engine *e = c->engine;
	int family = c->remote.sa.sa_family;
	size_t n = e->opts.nsources;
	unsigned start;
	int rc = IOCX_E_PORTS_EXHAUSTED;
	bool tried = false;

	if (c->local_len && !c->local_from_sources)
		return e->backend->open(c, &c->fastopen);
	start = atomic_fetch_add_explicit(&e->next_source, 1,
					  memory_order_relaxed);
	for (size_t k = 0; k < n; k++) {
		const struct sockaddr_storage *src = &e->sources[(start + k) % n];

		if (src->ss_family != family)
			continue;
		tried = true;
		c->local = (const union iocx_addr *)(const void *)src;
		c->local_len = family_length(family);
		c->local_from_sources = true;
		rc = e->backend->open(c, &c->fastopen);
		if (rc != IOCX_E_PORTS_EXHAUSTED && rc != IOCX_E_ADDRINUSE)
			return rc;
	}
	if (tried)
		return rc;
	/* No source of this family: the wildcard address. */
	c->local = NULL;
	c->local_len = 0;
	return e->backend->open(c, &c->fastopen);
}

/* See engine.h. */
int iocx__engine_copy_sources(iocx_engine *e)
{
	size_t n = e->opts.nsources;

	if (n == 0)
		return IOCX_OK;
	if (n > IOCX_MAX_SOURCES || !e->opts.sources)
		return IOCX_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		const struct sockaddr_storage *s = &e->opts.sources[i];

		if (s->ss_family != AF_INET && s->ss_family != AF_INET6)
			return IOCX_E_AFNOSUPPORT;
		if (s->ss_family == AF_INET
			    ? ((const struct sockaddr_in *)(const void *)s)
					      ->sin_port != 0
			    : ((const struct sockaddr_in6 *)(const void *)s)
					      ->sin6_port != 0)
			return IOCX_E_INVAL;
	}
	e->sources = iocx__alloc(n * sizeof(*e->sources));
	if (!e->sources)
		return IOCX_E_NOMEM;
	memcpy(e->sources, e->opts.sources, n * sizeof(*e->sources));
	e->opts.sources = e->sources;	/* never the caller's array again */
	return IOCX_OK;
}
