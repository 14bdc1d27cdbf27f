/*
 * Numeric socket addresses for --target: "A.B.C.D:PORT" or "[IPv6]:PORT".
 * Portable (inet_pton exists on Windows and POSIX); no name resolution
 * here: a --target NAME:PORT is only checked for its form, and the engine
 * resolves it (docs/bench.md, "Targets by name").
 */
#ifndef IOCX_BENCH_ADDR_H
#define IOCX_BENCH_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "iocx.h"	/* struct sockaddr for both platforms */

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

/*
 * Parse text into *out.  Returns the address length (sizeof sockaddr_in or
 * sockaddr_in6), or 0 when text is not an IPv4 literal or a bracketed IPv6
 * literal followed by ':' and a port 1..65535.  On Windows, Winsock must
 * be started (WSAStartup) first.
 */
size_t bench_addr_parse(const char *text, struct sockaddr_storage *out);

/*
 * Parse "NAME:PORT" for a connect by host name: NAME is letters, digits,
 * '-' and '.', labels of 1..63 bytes that neither start nor end with '-',
 * at most IOCX_MAX_HOST bytes, and its last label is not all digits (so a
 * malformed numeric address such as "127.1" is no name either); one
 * trailing '.' is allowed.  PORT is 1..65535, or 0 for the built-in
 * sink's port.  Copies NAME into host (room for IOCX_MAX_HOST + 1 bytes)
 * and the port into *port.  Returns whether text has that form.
 */
bool bench_name_parse(const char *text, char *host, unsigned short *port);

/*
 * Fill *out with the loopback address of family (::1 for AF_INET6, else
 * 127.0.0.1), port 0, everything else zero.  Returns its length.
 */
size_t bench_addr_loopback(int family, struct sockaddr_storage *out);

/*
 * Format addr as "A.B.C.D:PORT" or "[IPv6]:PORT" into buf (at least
 * BENCH_ADDR_TEXT bytes).  Returns buf.
 */
#define BENCH_ADDR_TEXT 64
const char *bench_addr_format(const struct sockaddr *addr, char *buf);

#endif /* IOCX_BENCH_ADDR_H */
