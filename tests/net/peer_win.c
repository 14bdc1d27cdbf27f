/*
 * The Windows half of the net-test helpers (contracts in peer.h): thread,
 * lock and event shims, the process bits (Winsock, watchdog, Wine,
 * handle count), select() for the listeners, and the recording and
 * fault-injecting wrappers on the iocx__win_sys table.
 */
#define FD_SETSIZE 1024

#include "peer.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer_os.h"
#ifndef PEER_PUBLIC_API
#include "win/sys.h"
#endif

/* ---- shims ------------------------------------------------------------ */

peer_tid peer_thread_id(void)
{
	return GetCurrentThreadId();
}

struct peer_thread {
	HANDLE h;
	void (*fn)(void *);
	void *arg;
};

static DWORD WINAPI thread_main(void *p)
{
	struct peer_thread *t = p;

	t->fn(t->arg);
	return 0;
}

peer_thread peer_thread_start(void (*fn)(void *), void *arg)
{
	struct peer_thread *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->h = CreateThread(NULL, 0, thread_main, t, 0, NULL);
	if (t->h == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

bool peer_thread_join(peer_thread t, unsigned timeout_ms)
{
	if (WaitForSingleObject(t->h, timeout_ms) != WAIT_OBJECT_0)
		return false;
	CloseHandle(t->h);
	free(t);
	return true;
}

struct peer_event {
	HANDLE h;
};

peer_event *peer_event_new(void)
{
	peer_event *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->h = CreateEventA(NULL, TRUE, FALSE, NULL);
	if (e->h == NULL) {
		free(e);
		return NULL;
	}
	return e;
}

void peer_event_set(peer_event *e)
{
	SetEvent(e->h);
}

bool peer_event_wait(peer_event *e, unsigned timeout_ms)
{
	return WaitForSingleObject(e->h, timeout_ms) == WAIT_OBJECT_0;
}

void peer_event_free(peer_event *e)
{
	if (e == NULL)
		return;
	CloseHandle(e->h);
	free(e);
}

void peer_yield(void)
{
	SwitchToThread();
}

unsigned peer_cpus(void)
{
	DWORD_PTR proc = 0, sys = 0;
	unsigned n = 0;

	if (!GetProcessAffinityMask(GetCurrentProcess(), &proc, &sys))
		return 0;
	for (; proc != 0; proc &= proc - 1)
		n++;
	return n;
}

void *peer__block_alloc(size_t size)
{
	return test_malloc(size);
}

void peer__block_free(void *ptr)
{
	test_free(ptr);
}

/* ---- sockets ---------------------------------------------------------- */

void peer__set_nonblocking(SOCKET s)
{
	u_long on = 1;

	ioctlsocket(s, FIONBIO, &on);
}

int peer__poll(const SOCKET *socks, const bool *write, bool *ready,
	       size_t n, unsigned ms)
{
	struct timeval tv = { (long)(ms / 1000), (long)(ms % 1000) * 1000 };
	fd_set rd, wr;
	size_t i;

	FD_ZERO(&rd);
	FD_ZERO(&wr);
	for (i = 0; i < n && rd.fd_count + wr.fd_count < FD_SETSIZE; i++) {
		if (socks[i] == INVALID_SOCKET)
			continue;
		if (write[i])
			FD_SET(socks[i], &wr);
		else
			FD_SET(socks[i], &rd);
	}
	if (select(0, &rd, &wr, NULL, &tv) == SOCKET_ERROR)
		return WSAGetLastError();
	for (i = 0; i < n; i++)
		ready[i] = socks[i] != INVALID_SOCKET &&
			   FD_ISSET(socks[i], write[i] ? &wr : &rd);
	return 0;
}

/* ---- process ---------------------------------------------------------- */

static DWORD WINAPI watchdog_thread(void *arg)
{
	unsigned seconds = (unsigned)(uintptr_t)arg;
	HANDLE never = CreateEventA(NULL, TRUE, FALSE, NULL);

	/* A timer, not synchronisation: nobody ever signals the event. */
	WaitForSingleObject(never, seconds * 1000u);
	fprintf(stderr, "watchdog: test binary still running after %u s, "
		"terminating\n", seconds);
	fflush(stderr);
	fflush(stdout);
	TerminateProcess(GetCurrentProcess(), 124);
	return 0;
}

void peer_init(unsigned watchdog_s)
{
	WSADATA wsa;
	HANDLE t;
	int rc;

	peer__init_common();
	setvbuf(stdout, NULL, _IONBF, 0);
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		fprintf(stderr, "WSAStartup failed: %d\n", WSAGetLastError());
		exit(1);
	}
	rc = iocx_set_allocator(peer_test_alloc, peer_test_free);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_set_allocator: %s\n",
			iocx_error_name(rc));
		exit(1);
	}
	t = CreateThread(NULL, 0, watchdog_thread,
			 (void *)(uintptr_t)watchdog_s, 0, NULL);
	if (t == NULL) {
		fprintf(stderr, "watchdog thread: %lu\n", GetLastError());
		exit(1);
	}
	CloseHandle(t);
	if (peer_is_wine())
		printf("running under wine %s\n", peer_wine_version());
}

const char *peer_backend(void)
{
	return "iocp";
}

bool peer_connect_fails_async(void)
{
	return false;
}

typedef const char *(CDECL *wine_version_fn)(void);

static wine_version_fn wine_version(void)
{
	HMODULE ntdll = GetModuleHandleA("ntdll.dll");
	FARPROC f;

	if (ntdll == NULL)
		return NULL;
	f = GetProcAddress(ntdll, "wine_get_version");
	/* Cast through void * as FARPROC and data pointers differ in type. */
	return (wine_version_fn)(void (*)(void))f;
}

bool peer_is_wine(void)
{
	return wine_version() != NULL;
}

const char *peer_wine_version(void)
{
	wine_version_fn f = wine_version();

	return f != NULL ? f() : "";
}

unsigned peer_handle_count(void)
{
	DWORD n = 0, flags;
	ULONG_PTR v;
	unsigned live = 0, misses = 0;

	if (GetProcessHandleCount(GetCurrentProcess(), &n) && n != 0)
		return n;
	/*
	 * Wine 8 answers TRUE with 0.  Handles are allocated lowest-free
	 * first, so the table is dense: walk it until 4096 consecutive
	 * values are not handles.
	 */
	for (v = 4; misses < 4096 && v < (1u << 24); v += 4) {
		if (GetHandleInformation((HANDLE)v, &flags)) {
			live++;
			misses = 0;
		} else {
			misses++;
		}
	}
	return live;
}

bool peer_handles_limit(unsigned extra)
{
	(void)extra;
	return false;
}

void peer_handles_unlimit(void)
{
}

/* Not with PEER_PUBLIC_API: see the end of peer.c. */
#ifndef PEER_PUBLIC_API
/* ---- syscall recorder and faults -------------------------------------- */

static struct iocx_win_sys sys_real;

static SOCKET WSAAPI w_socket(int af, int type, int protocol,
			      LPWSAPROTOCOL_INFOW info, GROUP g, DWORD flags)
{
	int err = peer__fault(&peer_faults.socket_err);
	SOCKET s;

	if (err != 0) {
		peer__sys_record(SYS_SOCKET, INVALID_SOCKET, 0, 0, 0, 0, err);
		WSASetLastError(err);
		return INVALID_SOCKET;
	}
	s = sys_real.wsa_socket(af, type, protocol, info, g, flags);
	err = s == INVALID_SOCKET ? WSAGetLastError() : 0;
	peer__sys_record(SYS_SOCKET, s, af, type, 0, s != INVALID_SOCKET, err);
	WSASetLastError(err);
	return s;
}

static int WSAAPI w_bind(SOCKET s, const struct sockaddr *name, int len)
{
	int err = peer__bind_fault(name);
	int rc;

	if (err != 0) {
		peer__sys_record(SYS_BIND, s, 0, 0, 0, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	rc = sys_real.bind(s, name, len);
	err = rc != 0 ? WSAGetLastError() : 0;
	peer__sys_record(SYS_BIND, s, 0, 0, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_setsockopt(SOCKET s, int level, int name,
			       const char *val, int len)
{
	int err = 0, rc;

	if (level == SOL_SOCKET && name == SO_UPDATE_CONNECT_CONTEXT)
		err = peer__fault(&peer_faults.update_ctx_err);
	if (err != 0) {
		peer__sys_record(SYS_SETSOCKOPT, s, level, name, 0, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	rc = sys_real.setsockopt(s, level, name, val, len);
	err = rc != 0 ? WSAGetLastError() : 0;
	peer__sys_record(SYS_SETSOCKOPT, s, level, name, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_closesocket(SOCKET s)
{
	int rc = sys_real.closesocket(s);
	int err = rc != 0 ? WSAGetLastError() : 0;

	peer__sys_record(SYS_CLOSESOCKET, s, 0, 0, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

/* The real ConnectEx of s's provider, loaded on every call (tests only). */
static LPFN_CONNECTEX real_connectex(SOCKET s)
{
	GUID guid = WSAID_CONNECTEX;
	LPFN_CONNECTEX fn = NULL;
	DWORD got = 0;

	if (sys_real.wsa_ioctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid,
			       sizeof(guid), &fn, sizeof(fn), &got, NULL,
			       NULL) != 0)
		return NULL;
	return fn;
}

static BOOL PASCAL w_connectex(SOCKET s, const struct sockaddr *name,
			       int namelen, PVOID buf, DWORD len, LPDWORD sent,
			       LPOVERLAPPED ov)
{
	int err = peer__fault(&peer_faults.connect_err);
	LPFN_CONNECTEX fn = NULL;
	size_t i;
	BOOL ok;

	if (err == 0 && (fn = real_connectex(s)) == NULL)
		err = WSAGetLastError();
	if (err != 0) {
		peer__sys_record(SYS_CONNECT, s, 0, 0, len, 0, err);
		WSASetLastError(err);
		return FALSE;
	}
	/*
	 * Record before the call: its completion may be dequeued (and the
	 * callback run) before ConnectEx returns here.
	 */
	i = peer__sys_record(SYS_CONNECT, s, 0, 0, len, 1, 0);
	ok = fn(s, name, namelen, buf, len, sent, ov);
	err = ok ? 0 : WSAGetLastError();
	if (!ok && err != WSA_IO_PENDING)
		peer__sys_failed(i, err);
	WSASetLastError(err);
	return ok;
}

static int WSAAPI w_send(SOCKET s, LPWSABUF bufs, DWORD count, LPDWORD sent,
			 DWORD flags, LPWSAOVERLAPPED ov,
			 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	int err = peer__send_fault();
	unsigned max = atomic_load(&peer_faults.send_max);
	WSABUF cut[16];
	size_t total = 0, i;
	int rc;

	for (i = 0; i < count; i++)
		total += bufs[i].len;
	if (err != 0) {
		peer__sys_record(SYS_SEND, s, 0, 0, total, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	if (max != 0 && total > max && count <= 16) {
		/* Offer at most max bytes: the OS then completes a part. */
		size_t left = max;

		for (i = 0; i < count; i++) {
			cut[i] = bufs[i];
			if (cut[i].len > left)
				cut[i].len = (ULONG)left;
			left -= cut[i].len;
		}
		atomic_fetch_add(&peer_faults.fired, 1);
		bufs = cut;
		total = max;
	}
	i = peer__sys_record(SYS_SEND, s, 0, 0, total, 1, 0);
	rc = sys_real.wsa_send(s, bufs, count, sent, flags, ov, routine);
	err = rc != 0 ? WSAGetLastError() : 0;
	if (rc != 0 && err != WSA_IO_PENDING)
		peer__sys_failed(i, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_recv(SOCKET s, LPWSABUF bufs, DWORD count,
			 LPDWORD received, LPDWORD flags, LPWSAOVERLAPPED ov,
			 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
	int err = peer__fault(&peer_faults.recv_err);
	size_t total = 0, i;
	int rc;

	for (i = 0; i < count; i++)
		total += bufs[i].len;
	if (err != 0) {
		peer__sys_record(SYS_RECV, s, 0, 0, total, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	/* Before the call: its completion may be dequeued first. */
	i = peer__sys_record(SYS_RECV, s, 0, 0, total, 1, 0);
	rc = sys_real.wsa_recv(s, bufs, count, received, flags, ov, routine);
	err = rc != 0 ? WSAGetLastError() : 0;
	if (rc != 0 && err != WSA_IO_PENDING)
		peer__sys_failed(i, err);
	WSASetLastError(err);
	return rc;
}

static int WSAAPI w_shutdown(SOCKET s, int how)
{
	int err = peer__fault(&peer_faults.shutdown_err);
	int rc;

	if (err != 0) {
		peer__sys_record(SYS_SHUTDOWN, s, how, 0, 0, 0, err);
		WSASetLastError(err);
		return SOCKET_ERROR;
	}
	rc = sys_real.shutdown(s, how);
	err = rc != 0 ? WSAGetLastError() : 0;
	peer__sys_record(SYS_SHUTDOWN, s, how, 0, 0, rc == 0, err);
	WSASetLastError(err);
	return rc;
}

static HANDLE WINAPI w_iocp(HANDLE file, HANDLE port, ULONG_PTR key,
			    DWORD threads)
{
	bool assoc = file != INVALID_HANDLE_VALUE;
	int err = peer__fault(assoc ? &peer_faults.associate_err
				    : &peer_faults.port_err);
	HANDLE h;

	if (err != 0) {
		if (assoc)
			peer__sys_record(SYS_ASSOCIATE, (SOCKET)file, 0, 0, 0, 0,
				   err);
		SetLastError((DWORD)err);
		return NULL;
	}
	h = sys_real.create_io_completion_port(file, port, key, threads);
	err = h == NULL ? (int)GetLastError() : 0;
	if (assoc)
		peer__sys_record(SYS_ASSOCIATE, (SOCKET)file, 0, 0, 0, h != NULL,
			   err);
	SetLastError((DWORD)err);
	return h;
}

static BOOL WINAPI w_cancel(HANDLE file, LPOVERLAPPED ov)
{
	int fault = peer__fault(&peer_faults.cancel_err);
	BOOL ok;
	DWORD err;

	if (fault != 0) {
		/* Refused: the operation runs on. */
		peer__sys_record(SYS_CANCEL, (SOCKET)file, 0, 0, 0, 0, fault);
		SetLastError((DWORD)fault);
		return FALSE;
	}
	ok = sys_real.cancel_io_ex(file, ov);
	err = ok ? 0 : GetLastError();

	peer__sys_record(SYS_CANCEL, (SOCKET)file, 0, 0, 0, ok, (int)err);
	SetLastError(err);
	return ok;
}

static BOOL WINAPI w_post(HANDLE port, DWORD bytes, ULONG_PTR key,
			   LPOVERLAPPED ov)
{
	int err = peer__fault(&peer_faults.post_err);

	if (err != 0) {
		SetLastError((DWORD)err);
		return FALSE;
	}
	return sys_real.post_queued_completion_status(port, bytes, key, ov);
}

bool peer_sys_can_inject(void)
{
	return true;
}

void peer_sys_install(void)
{
	iocx__win_sys_reset();
	sys_real = iocx__win_sys;
	peer_sys_clear();
	peer__faults_clear();
	iocx__win_sys.wsa_socket = w_socket;
	iocx__win_sys.bind = w_bind;
	iocx__win_sys.setsockopt = w_setsockopt;
	iocx__win_sys.closesocket = w_closesocket;
	iocx__win_sys.connectex = w_connectex;
	iocx__win_sys.wsa_send = w_send;
	iocx__win_sys.wsa_recv = w_recv;
	iocx__win_sys.shutdown = w_shutdown;
	iocx__win_sys.create_io_completion_port = w_iocp;
	iocx__win_sys.cancel_io_ex = w_cancel;
	iocx__win_sys.post_queued_completion_status = w_post;
}

void peer_sys_uninstall(void)
{
	iocx__win_sys_reset();
}
#endif /* PEER_PUBLIC_API */
