/*
 * A program that uses an installed iocx the way an adopter would: only
 * <iocx.h>, compiled and linked with `pkg-config --cflags --libs iocx`
 * (tests/pkg/install.sh builds it against the static library, the shared
 * library and, cross-built, the DLL).
 *
 * It listens on a loopback port of its own, connects to it with a first
 * payload, and exits 0 only when on_connect reported IOCX_OK, the peer
 * accepted the connection and received exactly the payload, and on_close
 * followed.  Every wait is bounded (5 s).
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L	/* clock_gettime, with -std=c11 */
#endif

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

#include <stdio.h>
#include <string.h>

#include <iocx.h>

#define WAIT_MS 5000

static const char payload[] = "hello from a pkg-config consumer";

#ifdef _WIN32
typedef SOCKET sock_t;
#define close_sock closesocket
static HANDLE connected_ev, closed_ev;

static void signal_ev(HANDLE *ev)
{
	SetEvent(*ev);
}

static int wait_ev(HANDLE *ev)
{
	return WaitForSingleObject(*ev, WAIT_MS) == WAIT_OBJECT_0 ? 0 : -1;
}

static int ready_to_read(sock_t s)
{
	fd_set rd;
	struct timeval tv = { WAIT_MS / 1000, 0 };

	FD_ZERO(&rd);
	FD_SET(s, &rd);
	return select(0, &rd, NULL, NULL, &tv) == 1 ? 0 : -1;
}
#else
typedef int sock_t;
#define INVALID_SOCKET (-1)
#define close_sock close
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int connected_ev, closed_ev;

static void signal_ev(int *ev)
{
	pthread_mutex_lock(&lock);
	*ev = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static int wait_ev(int *ev)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&lock);
	while (!*ev && rc == 0)
		rc = pthread_cond_timedwait(&cond, &lock, &until);
	rc = *ev ? 0 : -1;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int ready_to_read(sock_t s)
{
	struct pollfd p = { .fd = s, .events = POLLIN };

	return poll(&p, 1, WAIT_MS) == 1 ? 0 : -1;
}
#endif

static int connect_status = 1;	/* not reported yet */
static int close_reason = 1;

static void on_connect(iocx_conn *conn, const struct iocx_connect_result *r,
		       void *user)
{
	(void)conn;
	(void)user;
	connect_status = r->status;
	signal_ev(&connected_ev);
}

static void on_close(iocx_conn *conn, int reason, void *user)
{
	(void)conn;
	(void)user;
	close_reason = reason;
	signal_ev(&closed_ev);
}

static int fail(const char *what, int code)
{
	fprintf(stderr, "consumer: %s: %d (%s)\n", what, code,
		code < 0 ? iocx_strerror(code) : "os error");
	return 1;
}

int main(void)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	struct iocx_connect_request req;
	iocx_engine *engine = NULL;
	iocx_conn *conn = NULL;
	const char *backend;
	char got[sizeof(payload)];
	size_t have = 0;
	sock_t lsn, peer;
	int rc;
#ifdef _WIN32
	WSADATA wsa;

	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		return fail("WSAStartup", 0);
	connected_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
	closed_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
#endif
	/* The library linked is the one the header describes. */
	if (iocx_version() != IOCX_VERSION_NUMBER ||
	    strcmp(iocx_version_string(), IOCX_VERSION_STRING) != 0)
		return fail("iocx_version() is not the header's", 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lsn = socket(AF_INET, SOCK_STREAM, 0);
	if (lsn == INVALID_SOCKET ||
	    bind(lsn, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(lsn, (struct sockaddr *)&addr, &len) != 0 ||
	    listen(lsn, 8) != 0)
		return fail("loopback listener", 0);

	rc = iocx_engine_create(NULL, &engine);
	if (rc != IOCX_OK)
		return fail("iocx_engine_create", rc);
	backend = iocx_engine_backend(engine);	/* a static string */
	memset(&req, 0, sizeof(req));
	req.remote = (const struct sockaddr *)&addr;
	req.remote_len = sizeof(addr);
	req.payload = payload;
	req.payload_len = sizeof(payload);
	req.on_connect = on_connect;
	req.on_close = on_close;
	rc = iocx_connect(engine, &req, &conn);
	if (rc != IOCX_OK)
		return fail("iocx_connect", rc);
	if (wait_ev(&connected_ev) != 0)
		return fail("no on_connect within 5 s", 0);
	if (connect_status != IOCX_OK)
		return fail("on_connect", connect_status);

	if (ready_to_read(lsn) != 0)
		return fail("nothing to accept", 0);
	peer = accept(lsn, NULL, NULL);
	if (peer == INVALID_SOCKET)
		return fail("accept", 0);
	while (have < sizeof(got)) {
		int n;

		if (ready_to_read(peer) != 0)
			return fail("payload did not arrive", (int)have);
		n = (int)recv(peer, got + have, (int)(sizeof(got) - have), 0);
		if (n <= 0)
			return fail("recv", n);
		have += (size_t)n;
	}
	if (memcmp(got, payload, sizeof(payload)) != 0)
		return fail("the peer received other bytes", 0);

	rc = iocx_close(conn, IOCX_CLOSE_GRACEFUL);
	if (rc != IOCX_OK)
		return fail("iocx_close", rc);
	if (wait_ev(&closed_ev) != 0 || close_reason != IOCX_OK)
		return fail("on_close", close_reason);
	rc = iocx_engine_destroy(engine);
	if (rc != IOCX_OK)
		return fail("iocx_engine_destroy", rc);
	close_sock(peer);
	close_sock(lsn);
	printf("consumer: iocx %s, backend %s, connected to 127.0.0.1:%u, "
	       "peer received %zu bytes\n", iocx_version_string(), backend,
	       (unsigned)ntohs(addr.sin_port), have);
	return 0;
}
