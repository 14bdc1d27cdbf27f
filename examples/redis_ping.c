/*
 * redis_ping: N concurrent connections to a Redis server, each sending
 * PING as its first payload and expecting +PONG.
 *
 *   redis_ping IP PORT N           e.g. redis_ping 127.0.0.1 6379 100
 *
 * All N connects are started at once; each one reads its reply and closes
 * itself from the callback.  The main thread waits for the engine to go
 * idle and counts the answers.  Exit status 0 when all N said +PONG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iocx.h>

#include "address.h"

#define MAX_CONNS 10000

/* PING as a RESP array, as redis-cli sends it. */
static const char ping[] = "*1\r\n$4\r\nPING\r\n";
static const char pong[] = "+PONG\r\n";

struct pinger {
	char reply[32];		/* the first line of the answer */
	size_t len;
	int status;		/* once done: IOCX_OK for a reply, else why
				   none came */
	int done;		/* the answer is in (or never will be) */
};

/* Record why this connection ended and release it (once). */
static void finish(iocx_conn *conn, struct pinger *p, int status)
{
	if (p->done)
		return;
	p->done = 1;
	p->status = status;
	iocx_close(conn, IOCX_CLOSE_GRACEFUL);
}

/* Runs on a worker thread; callbacks of one connection never overlap. */
static void on_recv(iocx_conn *conn, int status, const void *data,
		    size_t len, void *user)
{
	struct pinger *p = user;
	size_t room = sizeof(p->reply) - p->len;

	if (status != IOCX_OK) {
		finish(conn, p, status);	/* closed before the reply */
		return;
	}
	memcpy(p->reply + p->len, data, len < room ? len : room);
	p->len += len < room ? len : room;
	if (memchr(p->reply, '\n', p->len) == NULL && p->len < sizeof(p->reply))
		return;				/* the line is not whole yet */
	finish(conn, p, IOCX_OK);		/* answered: see main */
}

/* The answer was exactly +PONG. */
static int is_pong(const struct pinger *p)
{
	return p->len == sizeof(pong) - 1 &&
	       memcmp(p->reply, pong, p->len) == 0;
}

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	struct pinger *p = user;
	int rc = r->status;

	if (rc == IOCX_OK)
		rc = iocx_read_start(conn, on_recv);
	if (rc != IOCX_OK)
		finish(conn, p, rc);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage to;
	size_t to_len = argc == 4 ? example_address(argv[1], argv[2], &to) : 0;
	long n = argc == 4 ? strtol(argv[3], NULL, 10) : 0;
	struct iocx_connect_request req;
	struct pinger *p;
	iocx_engine *e;
	long started = 0, pongs = 0, failed = 0;
	int rc;

	if (to_len == 0 || n < 1 || n > MAX_CONNS) {
		fprintf(stderr, "usage: %s IP PORT N (N = 1..%d)\n", argv[0],
			MAX_CONNS);
		return 2;
	}
	p = calloc((size_t)n, sizeof(*p));
	if (p == NULL)
		return 1;
	rc = iocx_engine_create(NULL, &e);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_engine_create: %s\n", iocx_strerror(rc));
		free(p);
		return 1;
	}

	memset(&req, 0, sizeof(req));
	req.remote = (const struct sockaddr *)&to;
	req.remote_len = to_len;
	req.payload = ping;
	req.payload_len = sizeof(ping) - 1;
	/* A static buffer outlives every connect: no copy needed. */
	req.payload_ownership = IOCX_PAYLOAD_BORROW;
	req.on_connect = on_connect;
	req.deadline_ms = 5000;
	/* The watchdog's close ends the read session first, and finish()
	 * releases the handle then. */
	req.idle_ms = 10000;
	for (long i = 0; i < n; i++) {
		req.user = &p[i];
		rc = iocx_connect(e, &req, NULL);
		if (rc != IOCX_OK) {
			fprintf(stderr, "connect %ld: %s\n", i,
				iocx_strerror(rc));
			break;
		}
		started++;
	}
	if (iocx_engine_wait_idle(e, 60000) != IOCX_OK)
		fprintf(stderr, "still busy after 60 s\n");
	iocx_engine_destroy(e);

	/* Every callback has returned: the records are ours again. */
	for (long i = 0; i < started; i++) {
		if (p[i].done && p[i].status == IOCX_OK && is_pong(&p[i]))
			pongs++;
		else if (++failed > 5)
			continue;
		else if (p[i].done && p[i].status == IOCX_OK)
			fprintf(stderr, "connection %ld answered %.*s\n", i,
				(int)p[i].len, p[i].reply);
		else
			fprintf(stderr, "connection %ld: %s\n", i,
				p[i].done ? iocx_strerror(p[i].status)
					  : "no answer");
	}
	printf("%ld connections, %ld +PONG\n", n, pongs);
	free(p);
	return pongs == n ? 0 : 1;
}
