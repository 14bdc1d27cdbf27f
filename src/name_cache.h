/*
 * The engine's cache of positive resolver answers (options.resolve_cache):
 * per host name (without case) and family, the addresses and when they
 * expire on the engine clock.  Above the resolver interface, so it serves
 * every platform and every resolver that gives a TTL (iocx_query_done_ttl).
 *
 * Bounded: at most max entries; a new entry in a full cache evicts the
 * oldest one put (first in, first out).  An expired entry is dropped when
 * a lookup finds it.  Every call is O(1) on average and thread-safe (one
 * leaf lock): answers are put from resolver threads, looked up by the
 * connection starting a race.
 */
#ifndef IOCX_NAME_CACHE_H
#define IOCX_NAME_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "iocx.h"
#include "platform.h"

struct iocx_name_cache;

/* A cache of at most max (1..IOCX_MAX_RESOLVE_CACHE) entries in *out;
 * IOCX_OK or IOCX_E_NOMEM. */
int iocx__name_cache_create(uint32_t max, struct iocx_name_cache **out);

/* Free nc and every entry (NULL is fine). */
void iocx__name_cache_destroy(struct iocx_name_cache *nc);

/*
 * The addresses kept for (host, family) that have not expired at now:
 * copies them to out[0..IOCX_MAX_ADDRESSES) (ports as they were put) and
 * returns how many; 0 when there is none.
 */
size_t iocx__name_cache_get(struct iocx_name_cache *nc, const char *host,
			    int family, uint64_t now,
			    struct sockaddr_storage *out);

/*
 * Keep the entries of addrs[0..n) of family for (host, family) until
 * expires (engine clock), replacing what was kept for it.  Nothing is
 * kept when no address is of family or memory is short.
 */
void iocx__name_cache_put(struct iocx_name_cache *nc, const char *host,
			  int family, const struct sockaddr_storage *addrs,
			  size_t n, uint64_t expires);

#endif /* IOCX_NAME_CACHE_H */
