/*
 * The Windows half of the sweep helpers (sweep.h): a wrapper on every
 * entry of iocx__win_sys.  A failed call does what the real one does when
 * it fails: nothing, except closesocket (the handle is released anyway,
 * as after a real WSAEINTR).  ConnectEx and DisconnectEx are loaded from
 * the socket's provider on each call that passes.
 */
#include "peer.h"
#include "sweep.h"
#include "win/error.h"
#include "win/sys.h"

enum {
	W_SOCKET, W_BIND, W_SETSOCKOPT, W_CLOSESOCKET, W_GETSOCKNAME, W_IOCTL,
	W_CONNECTEX, W_DISCONNECTEX, W_SEND, W_RECV, W_SHUTDOWN, W_IOCP,
	W_CANCEL, W_UNASSOCIATE, W_POST, W_GQCS, W_COUNT
};

const struct sweep_entry sweep__table[W_COUNT] = {
	[W_SOCKET] = { "WSASocketW", WSAEMFILE, false },
	[W_BIND] = { "bind", WSAEADDRINUSE, false },
	[W_SETSOCKOPT] = { "setsockopt", WSAENOBUFS, false },
	[W_CLOSESOCKET] = { "closesocket", WSAEINTR, false },
	[W_GETSOCKNAME] = { "getsockname", WSAENOBUFS, false },
	[W_IOCTL] = { "WSAIoctl", WSAENOBUFS, false },
	[W_CONNECTEX] = { "ConnectEx", WSAENOBUFS, false },
	[W_DISCONNECTEX] = { "DisconnectEx", WSAENOBUFS, false },
	[W_SEND] = { "WSASend", WSAENOBUFS, false },
	[W_RECV] = { "WSARecv", WSAENOBUFS, false },
	[W_SHUTDOWN] = { "shutdown", WSAENOBUFS, false },
	[W_IOCP] = { "CreateIoCompletionPort", ERROR_NO_SYSTEM_RESOURCES,
		     false },
	/* Not ERROR_NOT_FOUND: that means the packet is on its way. */
	[W_CANCEL] = { "CancelIoEx", ERROR_INVALID_PARAMETER, false },
	/* An NTSTATUS: STATUS_INSUFFICIENT_RESOURCES. */
	[W_UNASSOCIATE] = { "NtSetInformationFile", (int)0xC000009Au, false },
	[W_POST] = { "PostQueuedCompletionStatus",
		     ERROR_NO_SYSTEM_RESOURCES, false },
	/* A real failure: WAIT_TIMEOUT would only be a timeout, which
	 * every idle wait has anyway. */
	[W_GQCS] = { "GetQueuedCompletionStatusEx", ERROR_NO_SYSTEM_RESOURCES,
		     false },
};

const size_t sweep__count = W_COUNT;

static struct iocx_win_sys real;

bool sweep_usable(size_t entry)
{
	return entry < W_COUNT;
}

int sweep_mapped(size_t entry)
{
	/* A socket the OS would not take off the port stays the engine's. */
	if (entry == W_UNASSOCIATE)
		return IOCX_E_NOTSUP;
	return iocx__win_error_from_wsa(sweep_err(entry));
}

/* Set the entry's error as the thread's last error. */
static void set_err(size_t entry)
{
	WSASetLastError(sweep__table[entry].err);
}

static SOCKET WSAAPI w_socket(int af, int type, int protocol,
			      LPWSAPROTOCOL_INFOW info, GROUP g, DWORD flags)
{
	if (sweep__hit(W_SOCKET)) {
		set_err(W_SOCKET);
		return INVALID_SOCKET;
	}
	return real.wsa_socket(af, type, protocol, info, g, flags);
}

static int WSAAPI w_bind(SOCKET s, const struct sockaddr *name, int len)
{
	if (sweep__hit(W_BIND)) {
		set_err(W_BIND);
		return SOCKET_ERROR;
	}
	return real.bind(s, name, len);
}

static int WSAAPI w_setsockopt(SOCKET s, int level, int name,
			       const char *val, int len)
{
	if (sweep__hit(W_SETSOCKOPT)) {
		set_err(W_SETSOCKOPT);
		return SOCKET_ERROR;
	}
	return real.setsockopt(s, level, name, val, len);
}

static int WSAAPI w_closesocket(SOCKET s)
{
	int rc = real.closesocket(s);

	if (sweep__hit(W_CLOSESOCKET)) {
		set_err(W_CLOSESOCKET);
		return SOCKET_ERROR;
	}
	return rc;
}

static int WSAAPI w_getsockname(SOCKET s, struct sockaddr *name, int *len)
{
	if (sweep__hit(W_GETSOCKNAME)) {
		set_err(W_GETSOCKNAME);
		return SOCKET_ERROR;
	}
	return real.getsockname(s, name, len);
}

static int WSAAPI w_ioctl(SOCKET s, DWORD code, LPVOID in, DWORD in_len,
			  LPVOID out, DWORD out_len, LPDWORD returned,
			  LPWSAOVERLAPPED ov,
			  LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	if (sweep__hit(W_IOCTL)) {
		set_err(W_IOCTL);
		return SOCKET_ERROR;
	}
	return real.wsa_ioctl(s, code, in, in_len, out, out_len, returned, ov,
			      routine);
}

/* The extension function guid of s's provider into *fn; false if not. */
static bool load(SOCKET s, GUID guid, void *fn, DWORD size)
{
	DWORD got = 0;

	return real.wsa_ioctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid,
			      sizeof(guid), fn, size, &got, NULL, NULL) == 0;
}

static BOOL PASCAL w_connectex(SOCKET s, const struct sockaddr *name,
			       int namelen, PVOID buf, DWORD len,
			       LPDWORD sent, LPOVERLAPPED ov)
{
	LPFN_CONNECTEX fn = NULL;

	if (sweep__hit(W_CONNECTEX)) {
		set_err(W_CONNECTEX);
		return FALSE;
	}
	if (!load(s, (GUID)WSAID_CONNECTEX, &fn, sizeof(fn)))
		return FALSE;
	return fn(s, name, namelen, buf, len, sent, ov);
}

static BOOL PASCAL w_disconnectex(SOCKET s, LPOVERLAPPED ov, DWORD flags,
				  DWORD reserved)
{
	LPFN_DISCONNECTEX fn = NULL;

	if (sweep__hit(W_DISCONNECTEX)) {
		set_err(W_DISCONNECTEX);
		return FALSE;
	}
	if (!load(s, (GUID)WSAID_DISCONNECTEX, &fn, sizeof(fn)))
		return FALSE;
	return fn(s, ov, flags, reserved);
}

static int WSAAPI w_send(SOCKET s, LPWSABUF bufs, DWORD count, LPDWORD sent,
			 DWORD flags, LPWSAOVERLAPPED ov,
			 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	if (sweep__hit(W_SEND)) {
		set_err(W_SEND);
		return SOCKET_ERROR;
	}
	return real.wsa_send(s, bufs, count, sent, flags, ov, routine);
}

static int WSAAPI w_recv(SOCKET s, LPWSABUF bufs, DWORD count,
			 LPDWORD received, LPDWORD flags, LPWSAOVERLAPPED ov,
			 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	if (sweep__hit(W_RECV)) {
		set_err(W_RECV);
		return SOCKET_ERROR;
	}
	return real.wsa_recv(s, bufs, count, received, flags, ov, routine);
}

static int WSAAPI w_shutdown(SOCKET s, int how)
{
	if (sweep__hit(W_SHUTDOWN)) {
		set_err(W_SHUTDOWN);
		return SOCKET_ERROR;
	}
	return real.shutdown(s, how);
}

static HANDLE WINAPI w_iocp(HANDLE file, HANDLE port, ULONG_PTR key,
			    DWORD threads)
{
	if (sweep__hit(W_IOCP)) {
		SetLastError((DWORD)sweep__table[W_IOCP].err);
		return NULL;
	}
	return real.create_io_completion_port(file, port, key, threads);
}

static BOOL WINAPI w_cancel(HANDLE file, LPOVERLAPPED ov)
{
	if (sweep__hit(W_CANCEL)) {
		SetLastError((DWORD)sweep__table[W_CANCEL].err);
		return FALSE;
	}
	return real.cancel_io_ex(file, ov);
}

static LONG WINAPI w_unassociate(HANDLE file)
{
	if (sweep__hit(W_UNASSOCIATE))
		return (LONG)sweep__table[W_UNASSOCIATE].err;
	return real.unassociate(file);
}

static BOOL WINAPI w_post(HANDLE port, DWORD bytes, ULONG_PTR key,
			  LPOVERLAPPED ov)
{
	if (sweep__hit(W_POST)) {
		SetLastError((DWORD)sweep__table[W_POST].err);
		return FALSE;
	}
	return real.post_queued_completion_status(port, bytes, key, ov);
}

static BOOL WINAPI w_gqcs(HANDLE port, LPOVERLAPPED_ENTRY e, ULONG count,
			  PULONG removed, DWORD timeout, BOOL alertable)
{
	if (sweep__hit(W_GQCS)) {
		*removed = 0;
		SetLastError((DWORD)sweep__table[W_GQCS].err);
		return FALSE;
	}
	return real.get_queued_completion_status_ex(port, e, count, removed,
						     timeout, alertable);
}

void sweep_install(void)
{
	struct iocx_win_sys *t = &iocx__win_sys;

	iocx__win_sys_reset();
	real = iocx__win_sys;
	sweep_arm(0, 0);
	t->wsa_socket = w_socket;
	t->bind = w_bind;
	t->setsockopt = w_setsockopt;
	t->closesocket = w_closesocket;
	t->getsockname = w_getsockname;
	t->wsa_ioctl = w_ioctl;
	t->connectex = w_connectex;
	t->disconnectex = w_disconnectex;
	t->wsa_send = w_send;
	t->wsa_recv = w_recv;
	t->shutdown = w_shutdown;
	t->create_io_completion_port = w_iocp;
	t->cancel_io_ex = w_cancel;
	t->unassociate = w_unassociate;
	t->post_queued_completion_status = w_post;
	t->get_queued_completion_status_ex = w_gqcs;
}

void sweep_uninstall(void)
{
	iocx__win_sys_reset();
}
