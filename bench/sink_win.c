/*
 * Loopback sink for the bench on Winsock: blocking accept threads (see
 * sink.h); in mode hold, the accepted sockets are kept in one array under
 * a lock until sink_stop() closes them.  Stopping: set the flag, then
 * connect once per acceptor so every blocked accept() returns and sees
 * it; closing a listener does not reliably wake accept() everywhere.
 *
 * The sink runs in the bench's own process, so it shares the CPU (and,
 * under Wine, the wineserver) with the client.  Its threads' CPU time is
 * measured separately so the bench can report client CPU per connect.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "os.h"
#include "sink.h"

struct sink {
	SOCKET listener;
	struct sockaddr_in addr;
	enum bench_sink_mode mode;
	size_t payload;
	unsigned nthreads;
	HANDLE threads[BENCH_MAX_SINK_THREADS];
	atomic_bool stopping;
	_Atomic uint64_t accepted;
	_Atomic uint64_t handled;	/* read (if asked) and closed */
	_Atomic uint64_t bytes;
	/* BENCH_SINK_HOLD: the connections held open, until sink_stop(). */
	SRWLOCK hold_lock;
	SOCKET *held;
	size_t nheld, held_cap;
};

/* Keep s open (mode hold); false when there is no room to keep it. */
static bool hold(struct sink *k, SOCKET s)
{
	bool ok = true;

	AcquireSRWLockExclusive(&k->hold_lock);
	if (k->nheld == k->held_cap) {
		size_t cap = k->held_cap ? k->held_cap * 2 : 1024;
		SOCKET *more = realloc(k->held, cap * sizeof(*more));

		if (more) {
			k->held = more;
			k->held_cap = cap;
		}
	}
	if (k->nheld < k->held_cap)
		k->held[k->nheld++] = s;
	else
		ok = false;
	ReleaseSRWLockExclusive(&k->hold_lock);
	return ok;
}

/* Send buf[0..len) in full; false when the connection broke. */
static bool send_all(SOCKET s, const char *buf, size_t len)
{
	while (len > 0) {
		int n = send(s, buf, (int)len, 0);

		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * Read up to want bytes (or until EOF/error), sending each piece back
 * when echo is set; return what arrived.
 */
static size_t drain(SOCKET s, size_t want, bool echo)
{
	char buf[16384];
	size_t got = 0;

	while (got < want) {
		size_t room = want - got < sizeof(buf) ? want - got
						       : sizeof(buf);
		int n = recv(s, buf, (int)room, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (echo && !send_all(s, buf, (size_t)n))
			break;
	}
	return got;
}

static DWORD WINAPI acceptor(LPVOID arg)
{
	struct sink *k = arg;

	for (;;) {
		SOCKET s = accept(k->listener, NULL, NULL);

		if (atomic_load(&k->stopping)) {
			if (s != INVALID_SOCKET)
				closesocket(s);
			return 0;
		}
		if (s == INVALID_SOCKET)
			continue;
		atomic_fetch_add(&k->accepted, 1);
		if (k->mode != BENCH_SINK_CLOSE && k->payload > 0)
			atomic_fetch_add(&k->bytes,
					 drain(s, k->payload,
					       k->mode == BENCH_SINK_ECHO));
		if (k->mode != BENCH_SINK_HOLD || !hold(k, s))
			closesocket(s);
		atomic_fetch_add(&k->handled, 1);
	}
}

/* See sink.h. */
struct sink *sink_start(unsigned threads, enum bench_sink_mode mode,
			size_t payload)
{
	struct sink *k = calloc(1, sizeof(*k));
	int len = sizeof(k->addr);
	WSADATA wsa;

	if (!k || WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		free(k);
		fprintf(stderr, "iocx-bench: sink: cannot start Winsock\n");
		return NULL;
	}
	if (threads < BENCH_MIN_SINK_THREADS)
		threads = BENCH_MIN_SINK_THREADS;
	if (threads > BENCH_MAX_SINK_THREADS)
		threads = BENCH_MAX_SINK_THREADS;
	k->mode = mode;
	k->payload = payload;
	InitializeSRWLock(&k->hold_lock);
	k->listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	k->addr.sin_family = AF_INET;
	k->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (k->listener == INVALID_SOCKET ||
	    bind(k->listener, (struct sockaddr *)&k->addr, len) != 0 ||
	    listen(k->listener, SOMAXCONN) != 0 ||
	    getsockname(k->listener, (struct sockaddr *)&k->addr, &len) != 0) {
		fprintf(stderr, "iocx-bench: sink: cannot listen on "
			"127.0.0.1: %d\n", WSAGetLastError());
		goto err;
	}
	for (; k->nthreads < threads; k->nthreads++) {
		k->threads[k->nthreads] =
			CreateThread(NULL, 0, acceptor, k, 0, NULL);
		if (!k->threads[k->nthreads])
			break;
	}
	if (k->nthreads == 0) {
		fprintf(stderr, "iocx-bench: sink: no acceptor thread\n");
		goto err;
	}
	return k;
err:
	if (k->listener != INVALID_SOCKET)
		closesocket(k->listener);
	free(k);
	WSACleanup();
	return NULL;
}

/* See sink.h. */
const struct sockaddr *sink_address(const struct sink *k, size_t *len)
{
	*len = sizeof(k->addr);
	return (const struct sockaddr *)&k->addr;
}

/* See sink.h. */
unsigned sink_threads(const struct sink *k)
{
	return k->nthreads;
}

/* See sink.h. */
uint64_t sink_wait(struct sink *k, uint64_t handled, unsigned quiet_ms)
{
	uint64_t seen = atomic_load(&k->handled);
	uint64_t quiet_since = iocx__now_ns();

	while (seen < handled) {
		uint64_t now;

		Sleep(1);
		now = iocx__now_ns();
		if (atomic_load(&k->handled) != seen) {
			seen = atomic_load(&k->handled);
			quiet_since = now;
		} else if (now - quiet_since > quiet_ms * 1000000ull) {
			break;
		}
	}
	return seen;
}

/* See sink.h. */
void sink_counts(const struct sink *k, uint64_t *accepted, uint64_t *bytes)
{
	*accepted = atomic_load(&k->accepted);
	*bytes = atomic_load(&k->bytes);
}

static uint64_t filetime_ns(FILETIME t)
{
	return (((uint64_t)t.dwHighDateTime << 32) | t.dwLowDateTime) * 100;
}

/* See sink.h. */
uint64_t sink_cpu_ns(const struct sink *k)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < k->nthreads; i++) {
		FILETIME created, exited, kernel, user;

		if (GetThreadTimes(k->threads[i], &created, &exited, &kernel,
				   &user))
			sum += filetime_ns(kernel) + filetime_ns(user);
	}
	return sum;
}

/* See sink.h. */
void sink_stop(struct sink *k)
{
	atomic_store(&k->stopping, true);
	for (unsigned i = 0; i < k->nthreads; i++) {
		SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

		connect(s, (struct sockaddr *)&k->addr, sizeof(k->addr));
		closesocket(s);
	}
	if (WaitForMultipleObjects(k->nthreads, k->threads, TRUE, 10000) !=
	    WAIT_OBJECT_0) {
		/* An acceptor still runs: leave the sink alive, not freed. */
		fprintf(stderr, "iocx-bench: sink: acceptors did not stop\n");
		return;
	}
	for (unsigned i = 0; i < k->nthreads; i++)
		CloseHandle(k->threads[i]);
	closesocket(k->listener);
	for (size_t i = 0; i < k->nheld; i++)
		closesocket(k->held[i]);
	free(k->held);
	free(k);
	WSACleanup();
}
