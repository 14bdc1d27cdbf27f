/*
 * Loopback sink for the bench (Winsock, blocking accept threads).
 * Stopping: set the flag, then connect once per acceptor so every blocked
 * accept() returns and sees it; closing a listener does not reliably wake
 * accept() everywhere.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sink.h"

#define MAX_ACCEPTORS 16

struct sink {
	SOCKET listener;
	struct sockaddr_in addr;
	size_t payload;
	unsigned nthreads;
	HANDLE threads[MAX_ACCEPTORS];
	atomic_bool stopping;
	_Atomic uint64_t accepted;
	_Atomic uint64_t bytes;
};

/* Read up to want bytes (or until EOF/error); return what arrived. */
static size_t drain(SOCKET s, size_t want)
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
		if (k->payload > 0)
			atomic_fetch_add(&k->bytes, drain(s, k->payload));
		closesocket(s);
	}
}

/* See sink.h. */
struct sink *sink_start(unsigned threads, size_t payload)
{
	struct sink *k = calloc(1, sizeof(*k));
	int len = sizeof(k->addr);
	WSADATA wsa;

	if (!k || WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		goto err;
	if (threads == 0 || threads > MAX_ACCEPTORS)
		threads = 2;
	k->payload = payload;
	k->listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	k->addr.sin_family = AF_INET;
	k->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (k->listener == INVALID_SOCKET ||
	    bind(k->listener, (struct sockaddr *)&k->addr, len) != 0 ||
	    listen(k->listener, SOMAXCONN) != 0 ||
	    getsockname(k->listener, (struct sockaddr *)&k->addr, &len) != 0) {
		fprintf(stderr, "sink: cannot listen on 127.0.0.1: %d\n",
			WSAGetLastError());
		goto err;
	}
	for (; k->nthreads < threads; k->nthreads++) {
		k->threads[k->nthreads] =
			CreateThread(NULL, 0, acceptor, k, 0, NULL);
		if (!k->threads[k->nthreads])
			break;
	}
	if (k->nthreads == 0)
		goto err;
	return k;
err:
	if (k && k->listener)
		closesocket(k->listener);
	free(k);
	return NULL;
}

/* See sink.h. */
const struct sockaddr *sink_address(const struct sink *k, int *len)
{
	*len = sizeof(k->addr);
	return (const struct sockaddr *)&k->addr;
}

/* See sink.h. */
void sink_stop(struct sink *k, uint64_t *accepted, uint64_t *bytes)
{
	atomic_store(&k->stopping, true);
	for (unsigned i = 0; i < k->nthreads; i++) {
		SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

		connect(s, (struct sockaddr *)&k->addr, sizeof(k->addr));
		closesocket(s);
	}
	*accepted = atomic_load(&k->accepted);
	*bytes = atomic_load(&k->bytes);
	if (WaitForMultipleObjects(k->nthreads, k->threads, TRUE, 10000) !=
	    WAIT_OBJECT_0) {
		/* An acceptor still runs: leave the sink alive, not freed. */
		fprintf(stderr, "sink: acceptors did not stop\n");
		return;
	}
	for (unsigned i = 0; i < k->nthreads; i++)
		CloseHandle(k->threads[i]);
	closesocket(k->listener);
	free(k);
	WSACleanup();
}
