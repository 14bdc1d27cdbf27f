/*
 * The tests' DNS responder (see dns_responder.h).  One thread: poll() on
 * the socket with a short timeout, answer what is due, stop when asked;
 * every wait is bounded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns_responder.h"

#define MAX_PENDING 32
#define MAX_PACKET 512

struct pending {
	uint64_t due_ms;
	struct sockaddr_storage to;
	socklen_t to_len;
	unsigned char pkt[MAX_PACKET];
	size_t len;
};

struct dns_responder {
	int fd;
	char server[64];
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;		/* scripts and counts */
	struct dns_script script[2];	/* [0] A, [1] AAAA */
	unsigned queries[2];
	struct pending pending[MAX_PENDING];	/* the thread's */
	size_t npending;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int slot(int qtype)
{
	return qtype == DNS_AAAA ? 1 : 0;
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/*
 * Build the answer to query q[0..len) in out; returns its length, 0 to
 * stay silent (or for a packet that is no query we understand).
 */
static size_t answer(struct dns_responder *d, const unsigned char *q,
		     size_t len, unsigned char *out, unsigned *delay)
{
	struct dns_script s;
	size_t i = 12, qend, n = 0;
	unsigned qtype;

	if (len < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
		return 0;
	while (i < len && q[i] != 0 && (q[i] & 0xC0) == 0)
		i += 1 + q[i];
	if (i + 5 > len || q[i] != 0)
		return 0;
	qend = i + 5;	/* the root label, type, class */
	qtype = (unsigned)q[i + 1] << 8 | q[i + 2];
	if (qtype != DNS_A && qtype != DNS_AAAA)
		return 0;
	pthread_mutex_lock(&d->lock);
	d->queries[slot((int)qtype)]++;
	s = d->script[slot((int)qtype)];
	pthread_mutex_unlock(&d->lock);
	if (s.silent)
		return 0;
	*delay = s.delay_ms;
	memcpy(out, q, qend);
	/* QR, AA and the query's RD; then RA and the rcode. */
	out[2] = (unsigned char)(0x80 | 0x04 | (q[2] & 0x01));
	out[3] = (unsigned char)(0x80 | (s.rcode & 0x0F));
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);	/* no EDNS back */
	i = qend;
	for (size_t k = 0; s.rcode == DNS_NOERROR && k < s.n; k++) {
		const struct sockaddr_storage *a = &s.addrs[k];
		const void *rdata;
		unsigned rdlen;

		if (qtype == DNS_A && a->ss_family == AF_INET) {
			rdata = &((const struct sockaddr_in *)a)->sin_addr;
			rdlen = 4;
		} else if (qtype == DNS_AAAA && a->ss_family == AF_INET6) {
			rdata = &((const struct sockaddr_in6 *)a)->sin6_addr;
			rdlen = 16;
		} else {
			continue;
		}
		put16(out + i, 0xC00C);		/* the question's name */
		put16(out + i + 2, qtype);
		put16(out + i + 4, 1);		/* IN */
		put16(out + i + 6, 0);		/* TTL 60 s */
		put16(out + i + 8, 60);
		put16(out + i + 10, rdlen);
		memcpy(out + i + 12, rdata, rdlen);
		i += 12 + rdlen;
		n++;
	}
	put16(out + 6, (unsigned)n);
	return i;
}

static void *serve(void *arg)
{
	struct dns_responder *d = arg;

	while (!atomic_load(&d->stop)) {
		struct pollfd p = { .fd = d->fd, .events = POLLIN };
		unsigned char q[MAX_PACKET];
		uint64_t now = now_ms();
		int wait = 20;

		/* Send what is due. */
		for (size_t k = 0; k < d->npending;) {
			struct pending *pe = &d->pending[k];

			if (pe->due_ms > now) {
				k++;
				continue;
			}
			if (sendto(d->fd, pe->pkt, pe->len, 0,
				   (struct sockaddr *)&pe->to,
				   pe->to_len) < 0)
				perror("dns responder: sendto");
			*pe = d->pending[--d->npending];
		}
		if (poll(&p, 1, wait) <= 0)
			continue;
		for (int burst = 0; burst < 64; burst++) {
			struct pending *pe;
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			unsigned delay = 0;
			ssize_t len;
			size_t out;

			/* A full queue leaves the query in the socket for
			 * the next round (reading it now would drop it). */
			if (d->npending == MAX_PENDING)
				break;
			len = recvfrom(d->fd, q, sizeof(q), 0,
				       (struct sockaddr *)&from, &flen);
			if (len <= 0)
				break;
			pe = &d->pending[d->npending];
			out = answer(d, q, (size_t)len, pe->pkt, &delay);
			if (out == 0)
				continue;
			pe->len = out;
			pe->to = from;
			pe->to_len = flen;
			pe->due_ms = now_ms() + delay;
			d->npending++;
		}
	}
	return NULL;
}

/* See dns_responder.h. */
struct dns_responder *dns_start(const char *ip)
{
	return dns_start_port(ip, 0);
}

/* See dns_responder.h. */
struct dns_responder *dns_start_port(const char *ip, uint16_t port)
{
	struct dns_responder *d = calloc(1, sizeof(*d));
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	socklen_t len = sizeof(sa);
	int rcvbuf = 4 << 20;

	if (d == NULL)
		return NULL;
	pthread_mutex_init(&d->lock, NULL);
	atomic_init(&d->stop, false);
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
	    bind(d->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(d->fd, (struct sockaddr *)&sa, &len) != 0)
		goto fail;
	/* Room for bursts of queries (bench/resolver_choice.c keeps 1,000
	 * in flight); best effort, the default only drops more. */
	if (setsockopt(d->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) != 0)
		(void)setsockopt(d->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));
	snprintf(d->server, sizeof(d->server), "%s:%u", ip,
		 (unsigned)ntohs(sa.sin_port));
	/* Unscripted types: NXDOMAIN. */
	d->script[0].rcode = DNS_NXDOMAIN;
	d->script[1].rcode = DNS_NXDOMAIN;
	if (pthread_create(&d->thread, NULL, serve, d) != 0)
		goto fail;
	return d;
fail:
	if (d->fd >= 0)
		close(d->fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return NULL;
}

/* See dns_responder.h. */
const char *dns_server(const struct dns_responder *d)
{
	return d->server;
}

/* See dns_responder.h. */
void dns_script(struct dns_responder *d, int qtype,
		const struct dns_script *s)
{
	pthread_mutex_lock(&d->lock);
	d->script[slot(qtype)] = *s;
	pthread_mutex_unlock(&d->lock);
}

/* See dns_responder.h. */
unsigned dns_queries(struct dns_responder *d, int qtype)
{
	unsigned n;

	pthread_mutex_lock(&d->lock);
	n = d->queries[slot(qtype)];
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* See dns_responder.h. */
void dns_stop(struct dns_responder *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->stop, true);
	pthread_join(d->thread, NULL);
	close(d->fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
