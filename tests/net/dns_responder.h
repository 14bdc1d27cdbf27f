/*
 * A tiny DNS responder for the tests, on UDP on loopback (Linux only):
 * per query type (A, AAAA) a scripted answer (addresses, or an rcode such
 * as NXDOMAIN or SERVFAIL), a delay, or silence.  It answers any name and
 * counts the queries it got.  The tests point the engine's resolver at it,
 * so no query ever leaves the machine's loopback.
 */
#ifndef IOCX_TEST_DNS_RESPONDER_H
#define IOCX_TEST_DNS_RESPONDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_A 1
#define DNS_AAAA 28
#define DNS_NOERROR 0
#define DNS_SERVFAIL 2
#define DNS_NXDOMAIN 3

struct dns_script {
	int rcode;
	unsigned delay_ms;
	bool silent;			/* never answer */
	size_t n;			/* addresses (of the query's type) */
	struct sockaddr_storage addrs[4];
};

struct dns_responder;

/* Listen on ip:0 (UDP) and serve from a thread; NULL on failure. */
struct dns_responder *dns_start(const char *ip);

/* The same on a given port (53 for a resolver that reads resolv.conf). */
struct dns_responder *dns_start_port(const char *ip, uint16_t port);

/* "ip:port" for the engine's dns_servers option. */
const char *dns_server(const struct dns_responder *d);

/* What a query of qtype (DNS_A or DNS_AAAA) gets from now on. */
void dns_script(struct dns_responder *d, int qtype,
		const struct dns_script *s);

/* Queries of qtype received so far. */
unsigned dns_queries(struct dns_responder *d, int qtype);

/* Stop the thread, close the socket, free d (NULL is fine). */
void dns_stop(struct dns_responder *d);

#endif /* IOCX_TEST_DNS_RESPONDER_H */
