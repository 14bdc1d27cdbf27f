/*
 * http_get: fetch http://IP:PORT/PATH with one iocx connection.
 *
 *   http_get IP PORT [PATH]        e.g. http_get 127.0.0.1 8080 /
 *
 * The request leaves as the connection's first payload, carried with the
 * handshake; on_connect starts reading and on_recv collects the response
 * until the server closes (the request says "Connection: close").  The
 * main thread waits for the engine to go idle, then prints the status line
 * and the byte counts.  Exit status 0 when a whole response arrived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iocx.h>

#include "address.h"

/* Largest response kept; a bigger one fails the fetch. */
#define MAX_RESPONSE (64u * 1024 * 1024)

struct fetch {
	int connect_status;	/* on_connect's result */
	int end_status;		/* how reading ended: IOCX_E_EOF when whole */
	unsigned char *data;	/* the response so far */
	size_t len, cap;
};

static void finish(iocx_conn *conn, struct fetch *f, int status)
{
	f->end_status = status;
	iocx_close(conn, IOCX_CLOSE_GRACEFUL);
}

static int append(struct fetch *f, const void *data, size_t len)
{
	if (len > MAX_RESPONSE - f->len)
		return IOCX_E_MSGSIZE;
	if (f->len + len > f->cap) {
		size_t cap = f->cap ? f->cap : 16384;
		unsigned char *p;

		while (cap < f->len + len)
			cap *= 2;
		p = realloc(f->data, cap);
		if (p == NULL)
			return IOCX_E_NOMEM;
		f->data = p;
		f->cap = cap;
	}
	memcpy(f->data + f->len, data, len);
	f->len += len;
	return IOCX_OK;
}

/* Runs on a worker thread; so does every callback below. */
static void on_recv(iocx_conn *conn, int status, const void *data,
		    size_t len, void *user)
{
	struct fetch *f = user;

	if (status != IOCX_OK) {
		finish(conn, f, status);	/* EOF, an error or cancelled */
		return;
	}
	status = append(f, data, len);
	if (status != IOCX_OK)
		finish(conn, f, status);
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct fetch *f = user;
	int rc;

	f->connect_status = r->status;
	if (r->status != IOCX_OK) {
		iocx_close(conn, IOCX_CLOSE_GRACEFUL);	/* always release */
		return;
	}
	rc = iocx_read_start(conn, on_recv);
	if (rc != IOCX_OK)
		finish(conn, f, rc);
}

/* Length of the header block including its blank line, 0 if none. */
static size_t header_length(const struct fetch *f)
{
	for (size_t i = 0; i + 4 <= f->len; i++) {
		if (memcmp(f->data + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	}
	return 0;
}

/* The Content-Length header's value, or -1 when there is none. */
static long long content_length(const struct fetch *f, size_t hlen)
{
	static const char name[] = "\r\ncontent-length:";
	size_t n = sizeof(name) - 1;

	for (size_t i = 0; i + n < hlen; i++) {
		size_t k = 0;

		while (k < n && (f->data[i + k] | 0x20) == (name[k] | 0x20))
			k++;
		if (k == n)
			return strtoll((const char *)f->data + i + n, NULL, 10);
	}
	return -1;
}

/* Print what arrived; 0 for a whole response, 1 otherwise. */
static int report(const struct fetch *f)
{
	size_t hlen, line;

	if (f->connect_status != IOCX_OK) {
		fprintf(stderr, "connect failed: %s\n",
			iocx_strerror(f->connect_status));
		return 1;
	}
	hlen = header_length(f);
	if (f->end_status != IOCX_E_EOF || hlen == 0) {
		fprintf(stderr, "incomplete response (%zu bytes): %s\n",
			f->len, iocx_strerror(f->end_status));
		return 1;
	}
	line = (size_t)((unsigned char *)memchr(f->data, '\r', hlen) -
			f->data);
	printf("%.*s\n", (int)line, (const char *)f->data);
	printf("response: %zu bytes, header %zu, body %zu, "
	       "Content-Length %lld\n",
	       f->len, hlen, f->len - hlen, content_length(f, hlen));
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage to;
	size_t to_len = argc >= 3 ? example_address(argv[1], argv[2], &to) : 0;
	const char *path = argc >= 4 ? argv[3] : "/";
	struct fetch f = { .connect_status = IOCX_E_CANCELLED,
			   .end_status = IOCX_E_CANCELLED };
	char request[1024];
	struct iocx_connect_request req;
	iocx_engine *e;
	int n, rc;

	if (to_len == 0 || argc > 4 || path[0] != '/') {
		fprintf(stderr, "usage: %s IP PORT [PATH]\n", argv[0]);
		return 2;
	}
	n = snprintf(request, sizeof(request),
		     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
		     "Connection: close\r\n\r\n",
		     path, to.ss_family == AF_INET6 ? "[" : "", argv[1],
		     to.ss_family == AF_INET6 ? "]" : "", argv[2]);
	if (n < 0 || (size_t)n >= sizeof(request)) {
		fprintf(stderr, "path too long\n");
		return 2;
	}

	rc = iocx_engine_create(NULL, &e);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_engine_create: %s\n", iocx_strerror(rc));
		return 1;
	}
	memset(&req, 0, sizeof(req));
	req.remote = (const struct sockaddr *)&to;
	req.remote_len = to_len;
	req.payload = request;		/* copied: IOCX_PAYLOAD_COPY */
	req.payload_len = (size_t)n;
	req.on_connect = on_connect;
	req.user = &f;
	req.deadline_ms = 5000;		/* handshake and request */
	/* A server that stops answering: the watchdog's close first ends the
	 * read session (on_recv IOCX_E_CANCELLED), whose finish() releases
	 * the handle, as every connection must be released. */
	req.idle_ms = 10000;
	rc = iocx_connect(e, &req, NULL);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_connect: %s\n", iocx_strerror(rc));
	} else if (iocx_engine_wait_idle(e, 30000) != IOCX_OK) {
		/* Still busy: destroy below cancels what is left. */
		fprintf(stderr, "no answer within 30 s\n");
		rc = IOCX_E_TIMEDOUT;
	}
	iocx_engine_destroy(e);
	/* Every callback has returned: f is ours alone again. */
	if (rc == IOCX_OK)
		rc = report(&f);
	else
		rc = 1;
	free(f.data);
	return rc;
}
