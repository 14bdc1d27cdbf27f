/*
 * The IOCP backend: one completion port per engine, sockets connected with
 * ConnectEx, batched dequeue with GetQueuedCompletionStatusEx.
 *
 * Completion keys tell packets apart: KEY_IO packets carry the OVERLAPPED
 * embedded in a win_conn (container_of gets the connection back); request
 * packets (close, shutdown, stop) carry the connection pointer itself;
 * KEY_RESOLVE packets carry a finished lookup of the engine's own
 * resolver (win/resolve_gai.c), answered by the worker that dequeues it.
 * Every system call goes through iocx__win_sys (win/sys.h) so tests can
 * observe and fail them.  Raw codes become iocx codes only through
 * win/error.c.
 */
#include "win/sys.h"

#include <mstcpip.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "win/error.h"
#include "win/pool.h"
#include "win/resolve_gai.h"

#ifndef TCP_FASTOPEN
#define TCP_FASTOPEN 15		/* missing from mingw-w64 10 headers */
#endif
#ifndef SO_REUSE_UNICASTPORT
#define SO_REUSE_UNICASTPORT 0x3007	/* ws2def.h, Windows 10 */
#endif

enum completion_key {
	KEY_IO = 1,
	KEY_CLOSE,
	KEY_SHUTDOWN,
	KEY_STOP,
	KEY_WAKE,
	KEY_KICK,
	KEY_RESOLVE,
};

/* One op slot's OVERLAPPED, tagged so a completion finds its slot. */
struct win_op {
	OVERLAPPED ov;
	enum iocx_op slot;
	bool forced;		/* ended by closing the socket: cancelled */
};

struct win_conn {
	struct iocx_conn core;		/* first: the core allocates us */
	SOCKET sock;
	struct win_op ops[2];		/* indexed by enum iocx_op */
	WSABUF buf;
	WSABUF rbuf;
	DWORD recv_flags;		/* WSARecv's in/out flags */
	/* ConnectEx's lpdwBytesSent: the OS may write it after the call
	 * returned, so it lives here, and is never read. */
	DWORD bytes_sent_unused;
	bool from_pool;			/* sock is a recycled one */
	/* The MAIN slot's operation is a ConnectEx (set before it is
	 * issued, read by the worker that dequeues its completion). */
	bool connecting;
};

struct win_engine {
	HANDLE port;
	LPFN_CONNECTEX connectex4;
	LPFN_CONNECTEX connectex6;	/* NULL when IPv6 is unavailable */
	LPFN_DISCONNECTEX disconnectex;	/* loaded when recycling */
	OVERLAPPED_ENTRY *entries;	/* batch entries per worker */
	unsigned batch;
	bool wsa_started;
	/* Recycled sockets by family (0: IPv4, 1: IPv6).  reuse_broken is
	 * set the first time the OS refuses to reconnect one (Wine). */
	struct iocx_win_pool pool[2];
	atomic_bool reuse_broken;
	/* Set the first time the OS refuses a second ConnectEx on a socket
	 * whose first one failed (Wine 8: WSAECONNABORTED). */
	atomic_bool reconnect_broken;
	/* The engine's own resolver, when the options name none. */
	struct iocx_gai *gai;
};

static struct win_conn *win_conn(struct iocx_conn *c)
{
	return container_of(c, struct win_conn, core);
}

/* Ready a slot's OVERLAPPED for a new operation. */
static void reset_op(struct win_conn *w, enum iocx_op slot)
{
	memset(&w->ops[slot].ov, 0, sizeof(w->ops[slot].ov));
	w->ops[slot].slot = slot;
	w->ops[slot].forced = false;
}

static struct win_engine *win_engine(struct iocx_engine *e)
{
	return e->backend_data;
}

/* Record a failed call's WSA error on c and map it. */
static int fail_wsa(struct iocx_conn *c, int err)
{
	c->os_code = (uint32_t)err;
	return iocx__win_error_from_wsa(err);
}

/*
 * Load a Winsock extension function (ConnectEx, DisconnectEx) for family
 * into *fn, a function pointer of size bytes; false when unavailable.
 */
static bool load_extension(int family, GUID guid, void *fn, DWORD size)
{
	DWORD bytes;
	SOCKET s;
	bool ok;

	s = iocx__win_sys.wsa_socket(family, SOCK_STREAM, IPPROTO_TCP, NULL,
				     0, WSA_FLAG_OVERLAPPED);
	if (s == INVALID_SOCKET)
		return false;
	ok = iocx__win_sys.wsa_ioctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER,
				     &guid, sizeof(guid), fn, size, &bytes,
				     NULL, NULL) == 0;
	iocx__win_sys.closesocket(s);
	return ok;
}

/*
 * Stop the resolver posting to the port and free the lookups still in it
 * (cancelled ones whose answer came late).  The workers have stopped, so
 * nothing else dequeues; other packets carry nothing to free.
 */
static void drain_resolver(struct win_engine *we)
{
	OVERLAPPED_ENTRY ent[16];
	ULONG n;

	iocx__gai_detach(we->gai);
	while (iocx__win_sys.get_queued_completion_status_ex(we->port, ent, 16,
							    &n, 0, FALSE)) {
		for (ULONG i = 0; i < n; i++) {
			if (ent[i].lpCompletionKey == KEY_RESOLVE)
				iocx__gai_drop(ent[i].lpOverlapped);
		}
	}
	/* Lookups still with the OS keep the Winsock reference. */
	if (iocx__gai_release(we->gai))
		we->wsa_started = false;
	we->gai = NULL;
}

static void iocp_engine_fini(struct iocx_engine *e)
{
	struct win_engine *we = win_engine(e);

	iocx__win_pool_drain(&we->pool[0]);
	iocx__win_pool_drain(&we->pool[1]);
	if (we->gai)
		drain_resolver(we);
	if (we->port)
		CloseHandle(we->port);
	if (we->wsa_started)
		WSACleanup();
	iocx__free(we->entries);
	iocx__free(we);
	e->backend_data = NULL;
}

static int iocp_engine_init(struct iocx_engine *e)
{
	unsigned workers = e->opts.workers ? e->opts.workers : 1;
	struct win_engine *we;
	WSADATA wsa;
	int rc = IOCX_E_SYSTEM;

	/* GetAddrInfoExW takes no list of servers per call (docs/names.md):
	 * the engine's own resolver cannot honour dns_servers. */
	if (!e->opts.resolver && e->opts.dns_servers)
		return IOCX_E_NOTSUP;
	e->opts.dns_servers = NULL;	/* never the caller's string again */
	we = iocx__alloc(sizeof(*we));
	if (!we)
		return IOCX_E_NOMEM;
	memset(we, 0, sizeof(*we));
	e->backend_data = we;
	we->batch = e->opts.batch;
	we->entries = iocx__alloc(sizeof(*we->entries) * we->batch * workers);
	if (!we->entries) {
		rc = IOCX_E_NOMEM;
		goto err;
	}
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		goto err;
	we->wsa_started = true;
	we->port = iocx__win_sys.create_io_completion_port(
		INVALID_HANDLE_VALUE, NULL, 0, workers);
	if (!we->port)
		goto err;
	iocx__win_pool_init(&we->pool[0]);
	iocx__win_pool_init(&we->pool[1]);
	atomic_init(&we->reuse_broken, false);
	atomic_init(&we->reconnect_broken, false);
	if (!load_extension(AF_INET, (GUID)WSAID_CONNECTEX, &we->connectex4,
			    sizeof(we->connectex4)))
		goto err;
	if (!load_extension(AF_INET6, (GUID)WSAID_CONNECTEX, &we->connectex6,
			    sizeof(we->connectex6)))
		we->connectex6 = NULL;
	/* Without DisconnectEx, graceful closes simply close. */
	if (e->opts.recycle_sockets &&
	    !load_extension(AF_INET, (GUID)WSAID_DISCONNECTEX,
			    &we->disconnectex, sizeof(we->disconnectex)))
		we->disconnectex = NULL;
	if (!e->opts.resolver) {
		we->gai = iocx__gai_create(we->port, KEY_RESOLVE);
		if (!we->gai) {
			rc = IOCX_E_NOMEM;
			goto err;
		}
		e->opts.resolver = iocx__gai_ops(we->gai);
	}
	return IOCX_OK;

err:
	iocp_engine_fini(e);
	return rc;
}

static int iocp_wait(struct iocx_engine *e, unsigned worker,
		     struct iocx_event *events, unsigned max,
		     uint64_t timeout_ns)
{
	struct win_engine *we = win_engine(e);
	OVERLAPPED_ENTRY *ent = we->entries + (size_t)worker * we->batch;
	/*
	 * GQCSEx takes whole milliseconds: round up, never wake early.  The
	 * wait also ends only on the system timer's tick (about 15.6 ms by
	 * default on Windows, docs/windows.md "Pacing"); the core's timers
	 * are late by up to that much.  The core's slice keeps this below
	 * INFINITE.
	 */
	DWORD timeout_ms = (DWORD)((timeout_ns + 999999u) / 1000000u);
	ULONG n = 0;

	if (max > we->batch)
		max = we->batch;
	/* On FALSE, Wine sets n to 1: never read the entries then. */
	if (!iocx__win_sys.get_queued_completion_status_ex(
		    we->port, ent, max, &n, timeout_ms, FALSE))
		return GetLastError() == WAIT_TIMEOUT ? 0 : IOCX_E_SYSTEM;

	for (ULONG i = 0; i < n; i++) {
		struct iocx_event *ev = &events[i];

		memset(ev, 0, sizeof(*ev));
		switch (ent[i].lpCompletionKey) {
		case KEY_IO: {
			struct win_op *op = container_of(ent[i].lpOverlapped,
							 struct win_op, ov);
			/* The slot tag says which element of ops[] this is. */
			struct win_conn *w = container_of(op - op->slot,
							  struct win_conn,
							  ops[0]);
			uint32_t status = (uint32_t)op->ov.Internal;

			ev->op = op->slot;
			ev->kind = IOCX_EV_IO;
			ev->conn = &w->core;
			if (op->forced) {
				/* See iocp_cancel. */
				op->forced = false;
				status = 0xC0000120u; /* STATUS_CANCELLED */
				ev->socket_lost = true;
			}
			ev->status = op->slot == IOCX_OP_MAIN && w->connecting
				? iocx__win_error_from_connect(
					  status, w->core.local_len == 0)
				: iocx__win_error_from_ntstatus(status);
			ev->os_code = status;
			ev->bytes = ent[i].dwNumberOfBytesTransferred;
			break;
		}
		case KEY_CLOSE:
			ev->kind = IOCX_EV_CLOSE;
			ev->conn = (struct iocx_conn *)ent[i].lpOverlapped;
			break;
		case KEY_SHUTDOWN:
			ev->kind = IOCX_EV_SHUTDOWN;
			ev->conn = (struct iocx_conn *)ent[i].lpOverlapped;
			break;
		case KEY_WAKE:
			ev->kind = IOCX_EV_WAKE;
			break;
		case KEY_KICK:
			ev->kind = IOCX_EV_KICK;
			ev->conn = (struct iocx_conn *)ent[i].lpOverlapped;
			break;
		case KEY_RESOLVE:
			/* Answered here; its KICK reaches the connection. */
			iocx__gai_complete(ent[i].lpOverlapped);
			ev->kind = IOCX_EV_WAKE;
			break;
		default:
			ev->kind = IOCX_EV_STOP;
			break;
		}
	}
	return (int)n;
}

static int iocp_post(struct iocx_engine *e, enum iocx_event_kind kind,
		     struct iocx_conn *c)
{
	ULONG_PTR key = kind == IOCX_EV_CLOSE	   ? KEY_CLOSE
			: kind == IOCX_EV_SHUTDOWN ? KEY_SHUTDOWN
			: kind == IOCX_EV_WAKE	   ? KEY_WAKE
			: kind == IOCX_EV_KICK	   ? KEY_KICK
						   : KEY_STOP;

	if (!iocx__win_sys.post_queued_completion_status(
		    win_engine(e)->port, 0, key, (LPOVERLAPPED)c))
		return IOCX_E_SYSTEM;
	return IOCX_OK;
}

static bool is_v4_mapped(const union iocx_addr *a)
{
	static const unsigned char prefix[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	return a->sa.sa_family == AF_INET6 &&
	       memcmp(&a->in6.sin6_addr, prefix, sizeof(prefix)) == 0;
}

/* Bind to the caller's address, or the wildcard of the remote family. */
static int bind_local(struct iocx_conn *c, SOCKET s)
{
	struct sockaddr_storage any;
	const struct sockaddr *addr = c->local ? &c->local->sa : NULL;
	int len = c->local_len;
	bool ephemeral;

	if (len == 0) {
		memset(&any, 0, sizeof(any));
		any.ss_family = c->remote.sa.sa_family;
		addr = (const void *)&any;
		len = c->remote.sa.sa_family == AF_INET6
			      ? (int)sizeof(struct sockaddr_in6)
			      : (int)sizeof(struct sockaddr_in);
	}
	ephemeral = addr->sa_family == AF_INET6
			    ? ((const struct sockaddr_in6 *)(const void *)addr)
					      ->sin6_port == 0
			    : ((const struct sockaddr_in *)(const void *)addr)
					      ->sin_port == 0;
	if (iocx__win_sys.bind(s, addr, len) != 0) {
		int err = WSAGetLastError();

		c->os_code = (uint32_t)err;
		return iocx__win_error_from_bind(err, ephemeral);
	}
	return IOCX_OK;
}

/* The pool for c's family. */
static struct iocx_win_pool *pool_of(struct iocx_conn *c)
{
	return &win_engine(c->engine)->pool[c->remote.sa.sa_family == AF_INET6];
}

/*
 * Take a recycled socket for c if it may use one: recycling on and not
 * found broken, a wildcard bind, and a plain socket asked for (a kept
 * socket is plain: iocx__conn_plain_socket).
 */
static bool open_recycled(struct iocx_conn *c)
{
	struct win_engine *we = win_engine(c->engine);
	struct win_conn *w = win_conn(c);
	SOCKET s;

	if (!we->disconnectex || atomic_load(&we->reuse_broken) ||
	    c->local_len != 0 || !iocx__conn_plain_socket(c))
		return false;
	s = iocx__win_pool_take(pool_of(c));
	if (s == INVALID_SOCKET)
		return false;
	w->sock = s;
	w->from_pool = true;
	c->port_reuse = false;
	iocx__count(&iocx__counters(c->engine)->sockets_reused, 1);
	return true;
}

/*
 * SIO_TCP_INITIAL_RTO (Windows 8+), before the connect.  Best effort:
 * returns whether the OS took it.
 */
static bool tune_syn(struct iocx_conn *c, SOCKET s)
{
	const struct iocx_conn_opts *o = iocx__conn_opts(c);
	TCP_INITIAL_RTO_PARAMETERS p = {
		.Rtt = o->syn_rtt_ms ? o->syn_rtt_ms
				     : TCP_INITIAL_RTO_UNSPECIFIED_RTT,
		.MaxSynRetransmissions =
			o->syn_retransmissions == IOCX_SYN_NO_RETRANSMISSIONS
				? TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS
			: o->syn_retransmissions
				? o->syn_retransmissions
				: TCP_INITIAL_RTO_UNSPECIFIED_MAX_SYN_RETRANSMISSIONS,
	};
	DWORD bytes;

	return iocx__win_sys.wsa_ioctl(s, SIO_TCP_INITIAL_RTO, &p, sizeof(p),
				       NULL, 0, &bytes, NULL, NULL) == 0;
}

/* Create, configure, bind and associate a new socket for c. */
static int open_fresh(struct iocx_conn *c, bool *fastopen)
{
	struct win_engine *we = win_engine(c->engine);
	struct win_conn *w = win_conn(c);
	int family = c->remote.sa.sa_family;
	SOCKET s;
	int rc;

	w->sock = INVALID_SOCKET;
	w->from_pool = false;
	*fastopen = false;
	if (family == AF_INET6 && !we->connectex6)
		return IOCX_E_AFNOSUPPORT;
	s = iocx__win_sys.wsa_socket(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
				     WSA_FLAG_OVERLAPPED |
					     WSA_FLAG_NO_HANDLE_INHERIT);
	if (s == INVALID_SOCKET) {
		c->os_code = (uint32_t)WSAGetLastError();
		return iocx__win_error_from_socket((int)c->os_code);
	}

	if (is_v4_mapped(&c->remote)) {
		DWORD off = 0;

		if (iocx__win_sys.setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY,
					     (const char *)&off,
					     sizeof(off)) != 0) {
			rc = fail_wsa(c, WSAGetLastError());
			goto err;
		}
	}
	if (c->flags & IOCX_CONNECT_FASTOPEN) {
		DWORD on = 1;

		/* Best effort: where the OS refuses, connect without it. */
		*fastopen = iocx__win_sys.setsockopt(s, IPPROTO_TCP,
						     TCP_FASTOPEN,
						     (const char *)&on,
						     sizeof(on)) == 0;
	}
	/*
	 * Best effort: a wildcard socket shares its port per 4-tuple, its
	 * port chosen at connect time, instead of reserving one for every
	 * destination at bind (Windows 10 and later; refused elsewhere, and
	 * by Wine 8: then the bind reserves a port as before).
	 */
	c->port_reuse = false;
	if (c->local_len == 0) {
		DWORD on = 1;

		c->port_reuse = iocx__win_sys.setsockopt(
					s, SOL_SOCKET, SO_REUSE_UNICASTPORT,
					(const char *)&on, sizeof(on)) == 0;
	}
	rc = bind_local(c, s);
	if (rc != IOCX_OK)
		goto err;
	c->syn_tuned = false;
	if (iocx__conn_opts(c)->syn_rtt_ms ||
	    iocx__conn_opts(c)->syn_retransmissions)
		c->syn_tuned = tune_syn(c, s);
	if (iocx__win_sys.create_io_completion_port((HANDLE)s, we->port,
						    KEY_IO, 0) != we->port) {
		c->os_code = GetLastError();
		rc = IOCX_E_SYSTEM;
		goto err;
	}
	w->sock = s;
	return IOCX_OK;

err:
	iocx__win_sys.closesocket(s);
	*fastopen = false;
	return rc;
}

static int iocp_open(struct iocx_conn *c, bool *fastopen)
{
	*fastopen = false;
	if (open_recycled(c))
		return IOCX_OK;
	return open_fresh(c, fastopen);
}

static int iocp_connect(struct iocx_conn *c, const void *buf, size_t len)
{
	struct win_engine *we = win_engine(c->engine);
	struct win_conn *w = win_conn(c);
	LPFN_CONNECTEX fn = iocx__win_sys.connectex;

	if (!fn)
		fn = c->remote.sa.sa_family == AF_INET6 ? we->connectex6
						     : we->connectex4;
	reset_op(w, IOCX_OP_MAIN);
	w->connecting = true;
	/* Success or not, a pending ConnectEx queues exactly one packet. */
	if (!fn(w->sock, &c->remote.sa, c->remote_len,
		(PVOID)buf, (DWORD)len, &w->bytes_sent_unused,
		&w->ops[IOCX_OP_MAIN].ov)) {
		int err = WSAGetLastError();

		if (err == WSA_IO_PENDING)
			return IOCX_OK;
		return fail_wsa(c, err);
	}
	return IOCX_OK;
}

/*
 * ConnectEx on a recycled socket failed at once.  WSAEISCONN (Wine 8
 * keeps a disconnected socket connected) or WSAEINVAL mean the OS does
 * not reconnect a socket DisconnectEx gave back: stop recycling for this
 * engine, and the core goes on with a fresh socket.
 */
static bool iocp_recycled_refused(struct iocx_conn *c)
{
	struct win_engine *we = win_engine(c->engine);

	if (!win_conn(c)->from_pool ||
	    (c->os_code != WSAEISCONN && c->os_code != WSAEINVAL))
		return false;
	atomic_store(&we->reuse_broken, true);
	iocx__count(&iocx__counters(c->engine)->recycle_fallbacks, 1);
	iocx__win_pool_drain(pool_of(c));
	return true;
}

/*
 * A ConnectEx failed with WSAECONNREFUSED, WSAENETUNREACH or WSAETIMEDOUT
 * (the core checked): Microsoft's ConnectEx page lets the application call
 * ConnectEx again on the same socket, which saves the next attempt a
 * socket, its bind, its port and its completion-port association.  Not
 * once the OS proved it refuses that.
 */
static bool iocp_keep(struct iocx_conn *c)
{
	struct win_conn *w = win_conn(c);

	if (atomic_load(&win_engine(c->engine)->reconnect_broken))
		return false;
	/* Its next ConnectEx is a reconnect, not a recycled socket's. */
	w->from_pool = false;
	return true;
}

/*
 * The second ConnectEx on a kept socket failed at once.  WSAECONNABORTED
 * (Wine 8, which passes a Linux socket's state through), WSAEINVAL or
 * WSAEISCONN mean the OS will not connect that socket again: stop keeping
 * sockets for this engine.  Other errors are the attempt's own.
 */
static bool iocp_reconnect_refused(struct iocx_conn *c)
{
	if (c->os_code != WSAECONNABORTED && c->os_code != WSAEINVAL &&
	    c->os_code != WSAEISCONN)
		return false;
	atomic_store(&win_engine(c->engine)->reconnect_broken, true);
	return true;
}

static int iocp_send(struct iocx_conn *c, const void *buf, size_t len)
{
	struct win_conn *w = win_conn(c);

	w->buf.buf = (char *)(uintptr_t)buf;
	w->buf.len = len > MAXDWORD ? MAXDWORD : (ULONG)len;
	reset_op(w, IOCX_OP_MAIN);
	w->connecting = false;
	if (iocx__win_sys.wsa_send(w->sock, &w->buf, 1, NULL, 0,
				   &w->ops[IOCX_OP_MAIN].ov, NULL) != 0) {
		int err = WSAGetLastError();

		if (err != WSA_IO_PENDING)
			return fail_wsa(c, err);
	}
	return IOCX_OK;
}

static int iocp_connected(struct iocx_conn *c)
{
	struct win_conn *w = win_conn(c);

	/* Without it getpeername, shutdown and friends fail on Windows
	 * (Wine accepts them anyway, so only a test of the call proves it). */
	if (iocx__win_sys.setsockopt(w->sock, SOL_SOCKET,
				     SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
		return fail_wsa(c, WSAGetLastError());
	return IOCX_OK;
}

static int iocp_recv(struct iocx_conn *c, void *buf, size_t len)
{
	struct win_conn *w = win_conn(c);

	w->rbuf.buf = buf;
	w->rbuf.len = len > MAXDWORD ? MAXDWORD : (ULONG)len;
	w->recv_flags = 0;
	reset_op(w, IOCX_OP_RECV);
	if (iocx__win_sys.wsa_recv(w->sock, &w->rbuf, 1, NULL, &w->recv_flags,
				   &w->ops[IOCX_OP_RECV].ov, NULL) != 0) {
		int err = WSAGetLastError();

		if (err != WSA_IO_PENDING)
			return fail_wsa(c, err);
	}
	return IOCX_OK;
}

static int iocp_disconnect(struct iocx_conn *c)
{
	struct win_engine *we = win_engine(c->engine);
	struct win_conn *w = win_conn(c);
	LPFN_DISCONNECTEX fn = iocx__win_sys.disconnectex;

	/* Without DisconnectEx, or once reuse proved broken, the core
	 * simply closes. */
	if (!we->disconnectex || atomic_load(&we->reuse_broken))
		return IOCX_E_NOTSUP;
	if (!fn)
		fn = we->disconnectex;
	reset_op(w, IOCX_OP_MAIN);
	w->connecting = false;
	/* Completes once the transport let go (TIME_WAIT may delay it);
	 * a packet is queued either way. */
	if (!fn(w->sock, &w->ops[IOCX_OP_MAIN].ov, TF_REUSE_SOCKET, 0)) {
		int err = WSAGetLastError();

		if (err != WSA_IO_PENDING)
			return fail_wsa(c, err);
	}
	return IOCX_OK;
}

static bool iocp_recycle(struct iocx_conn *c)
{
	struct win_engine *we = win_engine(c->engine);
	struct win_conn *w = win_conn(c);
	bool kept = !atomic_load(&we->reuse_broken) &&
		    iocx__win_pool_put(pool_of(c), w->sock);

	if (!kept)
		iocx__win_sys.closesocket(w->sock);
	w->sock = INVALID_SOCKET;
	return kept;
}

static int iocp_shutdown(struct iocx_conn *c)
{
	if (iocx__win_sys.shutdown(win_conn(c)->sock, SD_SEND) != 0)
		return fail_wsa(c, WSAGetLastError());
	return IOCX_OK;
}

static void iocp_cancel(struct iocx_conn *c, enum iocx_op op)
{
	struct win_conn *w = win_conn(c);

	/* ERROR_NOT_FOUND means the completion is already on its way; either
	 * way exactly one packet for the operation follows. */
	if (iocx__win_sys.cancel_io_ex((HANDLE)w->sock, &w->ops[op].ov) ||
	    GetLastError() == ERROR_NOT_FOUND)
		return;
	/*
	 * Any other failure would leave the operation to the OS: a connect
	 * to its SYN budget (about 21 s), a receive to the peer's next byte,
	 * which may never come, and close, read_stop or destroy waiting on
	 * it.  The core cancels only to give the operation up, so close the
	 * socket: that ends every operation on it, each still with its
	 * packet, and the cancelled one reports it cancelled (a connect's
	 * receive cannot be in flight; a send in flight beside a receive
	 * reports what the OS made of it).  The socket is then of no further
	 * use: it is hidden from the accessors first, under their lock, and
	 * the forced completions say so (socket_lost), so the core breaks
	 * the connection.
	 */
	w->ops[op].forced = true;
	if (op == IOCX_OP_MAIN)
		w->ops[IOCX_OP_RECV].forced = true;
	iocx__conn_unexpose(c);
	iocx__win_sys.closesocket(w->sock);
	w->sock = INVALID_SOCKET;
}

static void iocp_close(struct iocx_conn *c, bool abort)
{
	struct win_conn *w = win_conn(c);

	if (w->sock == INVALID_SOCKET)
		return;
	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		iocx__win_sys.setsockopt(w->sock, SOL_SOCKET, SO_LINGER,
					 (const char *)&lg, sizeof(lg));
	}
	iocx__win_sys.closesocket(w->sock);
	w->sock = INVALID_SOCKET;
}

/* A connect by name has no socket until its race is won. */
static void iocp_attach(struct iocx_conn *c)
{
	win_conn(c)->sock = INVALID_SOCKET;
}

/*
 * A race's winner: the socket moves to dst.  It stays associated with
 * the engine's port; its completions find their connection through the
 * OVERLAPPED of each operation, which is dst's from now on.
 */
static int iocp_adopt(struct iocx_conn *dst, struct iocx_conn *src)
{
	struct win_conn *to = win_conn(dst), *from = win_conn(src);

	to->sock = from->sock;
	to->from_pool = from->from_pool;
	from->sock = INVALID_SOCKET;
	return IOCX_OK;
}

static iocx_socket_t iocp_native(struct iocx_conn *c)
{
	return win_conn(c)->sock;
}

static int iocp_local_addr(struct iocx_conn *c, struct sockaddr_storage *out)
{
	int len = (int)sizeof(*out);

	/* Valid after SO_UPDATE_CONNECT_CONTEXT (iocp_connected). */
	if (iocx__win_sys.getsockname(win_conn(c)->sock,
				      (struct sockaddr *)out, &len) != 0)
		return fail_wsa(c, WSAGetLastError());
	return IOCX_OK;
}

/*
 * Give the socket to the user: without its completion-port association,
 * or not at all (the OS refused: before Windows 8.1, and Wine 8).
 */
static int iocp_detach(struct iocx_conn *c, iocx_socket_t *out)
{
	struct win_conn *w = win_conn(c);
	LONG status = iocx__win_sys.unassociate((HANDLE)w->sock);

	if (status < 0) {
		c->os_code = (uint32_t)status;
		return IOCX_E_NOTSUP;
	}
	*out = w->sock;
	w->sock = INVALID_SOCKET;
	return IOCX_OK;
}

static const struct iocx_backend iocp_backend = {
	.name = "iocp",
	.conn_size = sizeof(struct win_conn),
	.engine_init = iocp_engine_init,
	.engine_fini = iocp_engine_fini,
	.wait = iocp_wait,
	.post = iocp_post,
	.open = iocp_open,
	.connect = iocp_connect,
	.send = iocp_send,
	.recv = iocp_recv,
	.shutdown = iocp_shutdown,
	.disconnect = iocp_disconnect,
	.recycle = iocp_recycle,
	.recycled_refused = iocp_recycled_refused,
	.keep = iocp_keep,
	.reconnect_refused = iocp_reconnect_refused,
	.connected = iocp_connected,
	.cancel = iocp_cancel,
	.close = iocp_close,
	.adopt = iocp_adopt,
	.attach = iocp_attach,
	.native = iocp_native,
	.detach = iocp_detach,
	.local_addr = iocp_local_addr,
};

/* See iocx.h. */
int iocx_engine_create(const struct iocx_engine_options *opts,
		       iocx_engine **out)
{
	return iocx__engine_create_with(&iocp_backend, opts, 0, out);
}
