/*
 * The engine's cache of resolver answers (options.resolve_cache): per
 * host name (without case) and family, the addresses, or the fact that
 * there are none (a negative answer, RFC 2308: NXDOMAIN or no data of the
 * family), and when that expires on the engine clock.  Above the resolver
 * interface, so it serves every platform and every resolver.
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

/* What iocx__name_cache_get() returns for a kept negative answer. */
#define IOCX__NAME_CACHE_NEGATIVE (-1)

/*
 * What is kept for (host, family) and has not expired at now: for
 * addresses, copies them to out[0..IOCX_MAX_ADDRESSES) (ports as they
 * were put) and returns how many; for a negative answer, returns
 * IOCX__NAME_CACHE_NEGATIVE and sets *os_code (if not NULL) to the
 * resolver's code it was put with; 0 when nothing is kept.
 */
int iocx__name_cache_get(struct iocx_name_cache *nc, const char *host,
			 int family, uint64_t now, struct sockaddr_storage *out,
			 uint32_t *os_code);

/*
 * Keep the entries of addrs[0..n) of family for (host, family) until
 * expires (engine clock), replacing what was kept for it.  Nothing is
 * kept when no address is of family or memory is short.
 */
void iocx__name_cache_put(struct iocx_name_cache *nc, const char *host,
			  int family, const struct sockaddr_storage *addrs,
			  size_t n, uint64_t expires);

/*
 * Keep a negative answer for (host, family) until expires (engine clock):
 * the name has no address of family (os_code: the resolver's code, given
 * back by iocx__name_cache_get), replacing what was kept for it.  Nothing
 * is kept when memory is short.
 */
void iocx__name_cache_put_negative(struct iocx_name_cache *nc,
				   const char *host, int family,
				   uint32_t os_code, uint64_t expires);

#endif /* IOCX_NAME_CACHE_H */
