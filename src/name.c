/*
 * Host names in connect requests: what a host may look like, and numeric
 * addresses parsed without the OS.
 *
 * The parsers are strict on purpose.  An IPv4 literal is a dotted quad of
 * decimal numbers without leading zeros (no "127.1", no octal "010"):
 * the shorthand forms mean different addresses to different libraries,
 * and a name whose last label is all digits is no host name either
 * (RFC 1123 section 2.1), so such a host is refused rather than guessed.
 * An IPv6 literal is RFC 4291 section 2.2 text (with "::" and a trailing
 * dotted quad), optionally in brackets; zone ids ("%eth0") are refused.
 */
#include <stdbool.h>
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

#include "name.h"

#define MAX_LABEL 63

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int hex_value(char ch)
{
	if (is_digit(ch))
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Letters, digits, '-' and '_' make up a label. */
static bool is_label_byte(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_';
}

/* s[0..n) is a dotted quad: four 0..255 without leading zeros. */
static bool parse_ipv4(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			start = ++i;
		}
		while (i < n && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		out[part] = (unsigned char)v;
	}
	return i == n;
}

/* s[0..n) is IPv6 text: groups, at most one "::", maybe a dotted quad. */
static bool parse_ipv6(const char *s, size_t n, unsigned char out[16])
{
	unsigned groups[8];
	int ng = 0, gap = -1;
	size_t i = 0;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (n > 0 && s[0] == ':') {
		return false;
	}
	while (i < n) {
		size_t start = i;
		unsigned v = 0;

		while (i < n && hex_value(s[i]) >= 0 && i - start < 5)
			v = v * 16 + (unsigned)hex_value(s[i++]);
		if (i < n && s[i] == '.') {
			unsigned char q[4];

			/* A dotted quad ends the text and fills two groups. */
			if (ng > 6 || !parse_ipv4(s + start, n - start, q))
				return false;
			groups[ng++] = (unsigned)q[0] << 8 | q[1];
			groups[ng++] = (unsigned)q[2] << 8 | q[3];
			i = n;
			break;
		}
		if (i == start || i - start > 4 || ng == 8)
			return false;
		groups[ng++] = v;
		if (i == n)
			break;
		if (s[i++] != ':' || i == n)
			return false;
		if (s[i] == ':') {
			if (gap >= 0)
				return false;
			gap = ng;
			i++;
		}
	}
	if (gap < 0 ? ng != 8 : ng > 7)
		return false;
	memset(out, 0, 16);
	for (int k = 0; k < ng; k++) {
		/* Groups after the gap move to the end. */
		int at = gap >= 0 && k >= gap ? k + 8 - ng : k;

		out[2 * at] = (unsigned char)(groups[k] >> 8);
		out[2 * at + 1] = (unsigned char)groups[k];
	}
	return true;
}

static void set_port(void *port_field, uint16_t port)
{
	unsigned char *p = port_field;

	p[0] = (unsigned char)(port >> 8);	/* network byte order */
	p[1] = (unsigned char)port;
}

/*
 * Parse s[0..n) as a numeric address of family into *addr (with port)
 * and *len: IOCX__HOST_NUMERIC, or IOCX_E_INVAL when it is not one.
 */
static int numeric(int family, const char *s, size_t n, uint16_t port,
		   struct sockaddr_storage *addr, int *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)addr;
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)addr;
	struct sockaddr_storage parsed;
	bool ok;

	memset(&parsed, 0, sizeof(parsed));
	ok = family == AF_INET6
		? parse_ipv6(s, n, (unsigned char *)&((struct sockaddr_in6 *)
				(void *)&parsed)->sin6_addr)
		: parse_ipv4(s, n, (unsigned char *)&((struct sockaddr_in *)
				(void *)&parsed)->sin_addr);
	if (!ok)
		return IOCX_E_INVAL;
	*addr = parsed;
	addr->ss_family = (unsigned short)family;
	if (family == AF_INET6) {
		set_port(&in6->sin6_port, port);
		*len = (int)sizeof(*in6);
	} else {
		set_port(&in->sin_port, port);
		*len = (int)sizeof(*in);
	}
	return IOCX__HOST_NUMERIC;
}

/*
 * A name: labels of 1..63 label bytes between dots, one trailing dot
 * allowed.  Returns the length of the last label (0 for an invalid name)
 * and where it starts.
 */
static size_t check_labels(const char *s, size_t n, size_t *last)
{
	size_t start = 0;

	if (n > 1 && s[n - 1] == '.')
		n--;	/* the root, as in "example.com." */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!is_label_byte(s[i]) || i - start >= MAX_LABEL)
				return 0;
			continue;
		}
		if (i == start)
			return 0;	/* an empty label */
		*last = start;
		if (i < n)
			start = i + 1;
	}
	return n - *last;
}

/* See name.h. */
int iocx__host_parse(const char *host, uint16_t port,
		     struct sockaddr_storage *addr, int *len)
{
	size_t n, last = 0, last_len;
	bool all_digits = true;

	if (!host)
		return IOCX_E_INVAL;
	for (n = 0; host[n] != '\0'; n++) {
		if (n == IOCX_MAX_HOST)
			return IOCX_E_INVAL;
	}
	if (n == 0)
		return IOCX_E_INVAL;
	if (host[0] == '[') {
		if (n < 2 || host[n - 1] != ']')
			return IOCX_E_INVAL;
		return numeric(AF_INET6, host + 1, n - 2, port, addr, len);
	}
	if (memchr(host, ':', n))
		return numeric(AF_INET6, host, n, port, addr, len);

	last_len = check_labels(host, n, &last);
	if (last_len == 0)
		return IOCX_E_INVAL;
	for (size_t i = last; i < last + last_len; i++)
		all_digits = all_digits && is_digit(host[i]);
	if (all_digits)
		return numeric(AF_INET, host, n, port, addr, len);
	return IOCX__HOST_NAME;
}
