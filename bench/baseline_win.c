/*
 * The raw baseline driver for Windows: the workload of an iocx phase done
 * by hand with nothing but what a correct minimal program needs, so
 * iocx / raw shows what the engine costs.
 *
 * Per connect: WSASocketW, SO_REUSE_UNICASTPORT (best effort, as the
 * engine sets it on every wildcard socket, so both sides do the same job:
 * under Wine it costs two wineserver round trips per connect), bind to the
 * wildcard, associate with the port,
 * ConnectEx carrying the first payload (up to the engine's default cap of
 * IOCX_DEFAULT_CONNECT_PAYLOAD_CAP; the rest goes by WSASend, as the engine
 * does), one completion dequeued by GetQueuedCompletionStatusEx on one of
 * `workers` threads, then close.  Abortive close sets SO_LINGER {1, 0},
 * which on Windows only applies to a ConnectEx socket after
 * SO_UPDATE_CONNECT_CONTEXT, so the abort path makes both calls; a
 * graceful close is closesocket alone.  The phase measures the latency,
 * the same span for both drivers (docs/bench.md).
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "os.h"
#include "win/error.h"	/* the engine's mapping: same error names */

#ifndef TCP_FASTOPEN
#define TCP_FASTOPEN 15		/* missing from mingw-w64 10 headers */
#endif

#ifndef SO_REUSE_UNICASTPORT
#define SO_REUSE_UNICASTPORT 0x3007	/* ws2def.h, Windows 10 */
#endif

enum { KEY_IO = 1, KEY_STOP = 2 };

#define STOP_WAIT_MS 10000

struct raw_conn {
	OVERLAPPED ov;		/* of the one operation in flight */
	SOCKET sock;
	struct slot *slot;
	atomic_bool busy;		/* started, not yet finished */
	size_t sent;			/* payload bytes confirmed */
	size_t issued;		/* payload bytes of the operation */
	bool connected;
	bool fastopen;
	WSABUF buf;
	DWORD unused;			/* ConnectEx's racy byte count */
};

struct raw {
	struct phase *phase;
	const struct phase_config *cfg;
	HANDLE port;
	LPFN_CONNECTEX connectex;
	struct sockaddr_storage any;	/* wildcard of the remote family */
	int any_len;
	unsigned batch;
	HANDLE *threads;
	unsigned nthreads;
	struct raw_conn *conns;		/* per slot */
};

static bool is_v4_mapped(const struct sockaddr *sa)
{
	static const unsigned char prefix[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	return sa->sa_family == AF_INET6 &&
	       !memcmp(&((const struct sockaddr_in6 *)(const void *)sa)
				->sin6_addr,
		       prefix, sizeof(prefix));
}

static void close_conn(struct raw *r, struct raw_conn *c, bool abort)
{
	if (abort && c->connected) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT,
			   NULL, 0);
		setsockopt(c->sock, SOL_SOCKET, SO_LINGER, (const char *)&lg,
			   sizeof(lg));
	}
	(void)r;
	closesocket(c->sock);
	c->sock = INVALID_SOCKET;
}

/* The connect is over: report it, close, hand the slot back. */
static void finish(struct raw *r, struct raw_conn *c, int status)
{
	struct slot *s = c->slot;
	struct outcome o = {
		.status = status,
		.payload_sent = c->sent,
		.fastopen = c->fastopen,
	};
	bool abort = r->cfg->opt->close_mode == BENCH_CLOSE_ABORT;

	/* A timed-out connect was only cancelled by expire(): close here.
	 * A failed one that had connected is reset, as the engine does. */
	phase_complete(s, &o);
	close_conn(r, c, abort || status != IOCX_OK);
	atomic_store(&c->busy, false);
	phase_closed(r->phase);
	phase_release(s);
}

/* Send what ConnectEx did not carry.  IOCX_OK: a completion follows. */
static int send_rest(struct raw *r, struct raw_conn *c)
{
	const char *payload = r->cfg->payload;
	size_t left = r->cfg->opt->payload - c->sent;

	c->issued = left;
	c->buf.buf = (char *)(uintptr_t)(payload + c->sent);
	c->buf.len = left > MAXDWORD ? MAXDWORD : (ULONG)left;
	memset(&c->ov, 0, sizeof(c->ov));
	if (WSASend(c->sock, &c->buf, 1, NULL, 0, &c->ov, NULL) != 0) {
		int err = WSAGetLastError();

		if (err != WSA_IO_PENDING)
			return iocx__win_error_from_wsa(err);
	}
	return IOCX_OK;
}

static void on_completion(struct raw *r, struct raw_conn *c, DWORD bytes)
{
	int status = iocx__win_error_from_ntstatus((uint32_t)c->ov.Internal);

	if (status == IOCX_OK) {
		c->sent += bytes < c->issued ? bytes : c->issued;
		c->issued = 0;
		c->connected = true;
		if (c->sent < r->cfg->opt->payload) {
			status = send_rest(r, c);
			if (status == IOCX_OK)
				return;
		}
	}
	finish(r, c, status);
}

static DWORD WINAPI worker(LPVOID arg)
{
	struct raw *r = arg;
	OVERLAPPED_ENTRY *ent = calloc(r->batch, sizeof(*ent));

	if (!ent)
		return 1;
	for (;;) {
		ULONG n = 0;
		unsigned stops = 0;

		/* On FALSE (timeout) Wine sets n to 1: never read then. */
		if (!GetQueuedCompletionStatusEx(r->port, ent, r->batch, &n,
						 1000, FALSE))
			continue;
		for (ULONG i = 0; i < n; i++) {
			struct raw_conn *c;

			if (ent[i].lpCompletionKey == KEY_STOP) {
				stops++;
				continue;
			}
			c = (struct raw_conn *)ent[i].lpOverlapped;
			on_completion(r, c, ent[i].dwNumberOfBytesTransferred);
		}
		if (stops) {
			/* Pass on the stops meant for other workers. */
			while (--stops > 0)
				PostQueuedCompletionStatus(r->port, 0,
							   KEY_STOP, NULL);
			break;
		}
	}
	free(ent);
	return 0;
}

static LPFN_CONNECTEX load_connectex(int family)
{
	GUID guid = WSAID_CONNECTEX;
	LPFN_CONNECTEX fn = NULL;
	DWORD bytes;
	SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);

	if (s == INVALID_SOCKET)
		return NULL;
	if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid,
		     sizeof(guid), &fn, sizeof(fn), &bytes, NULL, NULL) != 0)
		fn = NULL;
	closesocket(s);
	return fn;
}

static void stop_workers(struct raw *r)
{
	if (!r->port)
		return;
	for (unsigned i = 0; i < r->nthreads; i++)
		PostQueuedCompletionStatus(r->port, 0, KEY_STOP, NULL);
	if (r->nthreads)
		WaitForMultipleObjects(r->nthreads, r->threads, TRUE,
				       STOP_WAIT_MS);
	for (unsigned i = 0; i < r->nthreads; i++)
		CloseHandle(r->threads[i]);
	r->nthreads = 0;
}

static void raw_free(struct raw *r)
{
	stop_workers(r);
	if (r->port)
		CloseHandle(r->port);
	free(r->threads);
	free(r->conns);
	free(r);
	WSACleanup();
}

static int raw_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct raw *r = calloc(1, sizeof(*r));
	WSADATA wsa;

	if (!r)
		return IOCX_E_NOMEM;
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		free(r);
		return IOCX_E_SYSTEM;
	}
	r->phase = p;
	r->cfg = cfg;
	r->batch = cfg->opt->batch;
	r->conns = calloc(cfg->opt->concurrency, sizeof(*r->conns));
	r->threads = calloc(cfg->workers, sizeof(*r->threads));
	r->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0,
					 cfg->workers);
	r->connectex = load_connectex(phase_family(p));
	if (!r->conns || !r->threads || !r->port || !r->connectex)
		goto err;
	r->any.ss_family = (ADDRESS_FAMILY)phase_family(p);
	r->any_len = phase_family(p) == AF_INET6
			     ? (int)sizeof(struct sockaddr_in6)
			     : (int)sizeof(struct sockaddr_in);
	for (; r->nthreads < cfg->workers; r->nthreads++) {
		r->threads[r->nthreads] =
			CreateThread(NULL, 0, worker, r, 0, NULL);
		if (!r->threads[r->nthreads])
			goto err;
	}
	*ctx = r;
	return 0;
err:
	raw_free(r);
	return IOCX_E_SYSTEM;
}

static int fail_start(struct raw_conn *c, int rc)
{
	closesocket(c->sock);
	c->sock = INVALID_SOCKET;
	atomic_store(&c->busy, false);
	return rc;
}

/* Best effort, like the engine's wildcard sockets: a refusal changes
 * nothing (the bind then reserves a port as before). */
static void share_port(SOCKET s)
{
	DWORD on = 1;

	(void)setsockopt(s, SOL_SOCKET, SO_REUSE_UNICASTPORT,
			 (const char *)&on, sizeof(on));
}

static int raw_start(void *ctx, struct slot *s)
{
	struct raw *r = ctx;
	const struct phase_config *cfg = r->cfg;
	struct raw_conn *c = &r->conns[s->index];
	size_t cap = IOCX_DEFAULT_CONNECT_PAYLOAD_CAP;
	size_t remote_len;
	const struct sockaddr *remote = phase_next_target(r->phase,
							  &remote_len);
	int rc;

	c->slot = s;
	c->sent = 0;
	c->connected = false;
	c->fastopen = false;
	atomic_store(&c->busy, true);
	c->sock = WSASocketW(remote->sa_family, SOCK_STREAM, IPPROTO_TCP,
			     NULL, 0,
			     WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
	if (c->sock == INVALID_SOCKET) {
		rc = iocx__win_error_from_wsa(WSAGetLastError());
		atomic_store(&c->busy, false);
		return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
	}
	if (is_v4_mapped(remote)) {
		DWORD off = 0;

		if (setsockopt(c->sock, IPPROTO_IPV6, IPV6_V6ONLY,
			       (const char *)&off, sizeof(off)) != 0)
			return fail_start(c, iocx__win_error_from_wsa(
						     WSAGetLastError()));
	}
	if (cfg->opt->fastopen) {
		DWORD on = 1;

		c->fastopen = setsockopt(c->sock, IPPROTO_TCP, TCP_FASTOPEN,
					 (const char *)&on, sizeof(on)) == 0;
	}
	share_port(c->sock);
	if (bind(c->sock, (const struct sockaddr *)&r->any, r->any_len) != 0)
		return fail_start(c, iocx__win_error_from_bind(
					     WSAGetLastError(), true));
	if (CreateIoCompletionPort((HANDLE)c->sock, r->port, KEY_IO, 0) !=
	    r->port)
		return fail_start(c, IOCX_E_SYSTEM);
	c->issued = cfg->opt->payload < cap ? cfg->opt->payload : cap;
	memset(&c->ov, 0, sizeof(c->ov));
	if (!r->connectex(c->sock, remote, (int)remote_len,
			  (PVOID)cfg->payload, (DWORD)c->issued, &c->unused,
			  &c->ov)) {
		int err = WSAGetLastError();

		if (err != WSA_IO_PENDING)
			return fail_start(c, iocx__win_error_from_wsa(err));
	}
	return 0;
}

static void raw_expire(void *ctx, struct slot *s)
{
	struct raw *r = ctx;
	struct raw_conn *c = &r->conns[s->index];

	/* The completion (STATUS_CANCELLED, or the real result if it won)
	 * still arrives and finish() closes the socket. */
	CancelIoEx((HANDLE)c->sock, &c->ov);
}

static void raw_fini(void *ctx)
{
	struct raw *r = ctx;
	unsigned n = r->cfg->opt->concurrency;

	/* Normally nothing is in flight here; after a stall, cancel. */
	for (unsigned i = 0; i < n; i++) {
		if (atomic_load(&r->conns[i].busy))
			CancelIoEx((HANDLE)r->conns[i].sock, &r->conns[i].ov);
	}
	phase_wait_closed(r->phase, STOP_WAIT_MS);
	raw_free(r);
}

static const char *raw_backend(void *ctx)
{
	(void)ctx;
	return "raw ConnectEx+GQCSEx";
}

static unsigned raw_workers(void *ctx)
{
	return ((struct raw *)ctx)->nthreads;
}

static const struct driver raw_driver = {
	.name = "raw",
	.init = raw_init,
	.start = raw_start,
	.expire = raw_expire,
	.fini = raw_fini,
	.backend = raw_backend,
	.workers = raw_workers,
};

/* See drivers.h: one raw loop on Windows, whatever the backend. */
const struct driver *raw_driver_for(const char *backend)
{
	(void)backend;
	return &raw_driver;
}
