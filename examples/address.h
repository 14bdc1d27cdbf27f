/*
 * Shared by the examples: turn "IP PORT" from the command line into a
 * socket address.  Numeric IPv4 or IPv6 only: iocx connects to addresses,
 * name resolution is the program's business.
 */
#ifndef IOCX_EXAMPLE_ADDRESS_H
#define IOCX_EXAMPLE_ADDRESS_H

#include <stdlib.h>
#include <string.h>

#include <iocx.h>		/* the platform's socket headers */

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

/*
 * Fill *ss with ip:port and return its length, or 0 when ip is not a
 * numeric address or port not a number in 1..65535.
 */
static inline size_t example_address(const char *ip, const char *port,
				     struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char *end;
	unsigned long p = strtoul(port, &end, 10);

	if (*port == '\0' || *end != '\0' || p == 0 || p > 65535)
		return 0;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)p);
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)p);
		return sizeof(*in6);
	}
	return 0;
}

#endif /* IOCX_EXAMPLE_ADDRESS_H */
