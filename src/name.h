/*
 * Host names in connect requests: syntax checks and numeric addresses
 * (name.c).  Pure functions, no OS call: the same on every platform.
 */
#ifndef IOCX_NAME_H
#define IOCX_NAME_H

#include <stdint.h>

#include "iocx.h"

/* What iocx__host_parse() found. */
#define IOCX__HOST_NUMERIC 0	/* an IPv4 or IPv6 literal: *addr is set */
#define IOCX__HOST_NAME 1	/* a syntactically valid name to resolve */

/*
 * Check a request's host.  Returns IOCX_E_INVAL when it is NULL, empty,
 * longer than IOCX_MAX_HOST or not a host name or numeric address (see
 * iocx_connect in iocx.h); IOCX__HOST_NUMERIC after setting *addr to the
 * address with port (host byte order) and *len to its length; or
 * IOCX__HOST_NAME, leaving *addr and *len alone.
 */
int iocx__host_parse(const char *host, uint16_t port,
		     struct sockaddr_storage *addr, int *len);

#endif /* IOCX_NAME_H */
