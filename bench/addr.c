/*
 * --target parsing and address formatting (see addr.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <arpa/inet.h>
#endif

#include "addr.h"

/* Port: 1..65535, decimal digits only (no sign, no spaces). */
static bool parse_port(const char *s, unsigned short *out)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (unsigned short)v;
	return true;
}

/* See addr.h. */
size_t bench_addr_parse(const char *text, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = text;
	size_t hlen;
	unsigned short port;
	bool v6 = text[0] == '[';

	if (v6) {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return 0;
		h = text + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strchr(text, ':');
		if (!colon || strchr(colon + 1, ':'))
			return 0;	/* bare IPv6 needs brackets */
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= sizeof(host) || !parse_port(colon + 1, &port))
		return 0;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	memset(out, 0, sizeof(*out));
	if (v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return 0;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return 0;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		return sizeof(*in);
	}
}

/* One label of a host name: 1..63 letters, digits and '-', no '-' at
 * either end.  *digits_only says whether it has no letter or '-'. */
static bool name_label_ok(const char *s, size_t len, bool *digits_only)
{
	*digits_only = true;
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			continue;
		*digits_only = false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-'))
			return false;
	}
	return true;
}

/* See addr.h. */
bool bench_name_parse(const char *text, char *host, unsigned short *port)
{
	const char *colon = strrchr(text, ':');
	size_t hlen = colon ? (size_t)(colon - text) : 0;
	size_t end = hlen;
	bool digits_only = true;

	if (!colon)
		return false;
	if (!strcmp(colon + 1, "0"))
		*port = 0;		/* the built-in sink's */
	else if (!parse_port(colon + 1, port))
		return false;
	if (end > 0 && text[end - 1] == '.')
		end--;			/* the root's dot */
	if (end == 0 || hlen > IOCX_MAX_HOST)
		return false;
	for (size_t start = 0; start <= end;) {
		const char *dot = memchr(text + start, '.', end - start);
		size_t stop = dot ? (size_t)(dot - text) : end;

		if (!name_label_ok(text + start, stop - start, &digits_only))
			return false;
		start = stop + 1;
	}
	if (digits_only)
		return false;		/* the last label's */
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	return true;
}

/* See addr.h. */
const char *bench_addr_format(const struct sockaddr *addr, char *buf)
{
	char host[INET6_ADDRSTRLEN];

	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, BENCH_ADDR_TEXT, "[%s]:%u", host,
			 ntohs(in6->sin6_port));
	} else if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)addr;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, BENCH_ADDR_TEXT, "%s:%u", host,
			 ntohs(in->sin_port));
	} else {
		snprintf(buf, BENCH_ADDR_TEXT, "(family %d)", addr->sa_family);
	}
	return buf;
}

/* See addr.h. */
size_t bench_addr_loopback(int family, struct sockaddr_storage *out)
{
	struct sockaddr_in *in = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_addr.s6_addr[15] = 1;		/* ::1 */
		return sizeof(*in6);
	}
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*in);
}
