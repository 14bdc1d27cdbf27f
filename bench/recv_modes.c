/*
 * recv-modes: what a zero-byte WSARecv costs compared with a receive into
 * a pinned buffer, the choice behind iocx's read path (docs/architecture.md,
 * "Receive buffers").  One client socket on an IOCP, an echo peer on a
 * thread, 64-byte ping-pongs over loopback:
 *   pinned:    WSARecv(16 KiB) waits for the data (buffer pinned meanwhile)
 *   zero-byte: WSARecv(0 bytes) waits, then a non-blocking recv() copies
 * Prints round trips per second for each, alternating rounds, and the
 * ratio.  Windows/Wine only.  Exits 1 if a round trip goes wrong.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MSG 64
#define TRIPS 3000
#define ROUNDS 3

static DWORD WINAPI echo(LPVOID arg)
{
	SOCKET s = (SOCKET)(ULONG_PTR)arg;
	char buf[MSG];
	int n;

	while ((n = recv(s, buf, sizeof(buf), MSG_WAITALL)) > 0)
		send(s, buf, n, 0);
	closesocket(s);
	return 0;
}

/* Wait for the one pending receive on port; false on error. */
static bool wait_one(HANDLE port, DWORD *bytes)
{
	ULONG_PTR key;
	OVERLAPPED *ov;

	return GetQueuedCompletionStatus(port, bytes, &key, &ov, 5000) != 0;
}

/* TRIPS ping-pongs; returns round trips per second, 0 on failure. */
static double run(SOCKET c, HANDLE port, bool zero_byte)
{
	static char rbuf[16384];
	char msg[MSG];
	LARGE_INTEGER f, t0, t1;

	memset(msg, 'p', sizeof(msg));
	QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&t0);
	for (int i = 0; i < TRIPS; i++) {
		OVERLAPPED ov;
		WSABUF wb = { zero_byte ? 0 : sizeof(rbuf), rbuf };
		DWORD flags = 0, bytes = 0;
		size_t got = 0;

		memset(&ov, 0, sizeof(ov));
		if (WSARecv(c, &wb, 1, NULL, &flags, &ov, NULL) != 0 &&
		    WSAGetLastError() != WSA_IO_PENDING)
			return 0;
		if (send(c, msg, sizeof(msg), 0) != sizeof(msg))
			return 0;
		if (!wait_one(port, &bytes))
			return 0;
		got = bytes;
		while (got < MSG) {
			int n;

			if (zero_byte || got > 0) {
				/* Data is ready: copy it without waiting. */
				n = recv(c, rbuf + got, (int)(MSG - got), 0);
				if (n > 0) {
					got += (size_t)n;
					continue;
				}
				if (n == 0 || WSAGetLastError() != WSAEWOULDBLOCK)
					return 0;
			}
			/* Not all there yet: wait again the same way. */
			memset(&ov, 0, sizeof(ov));
			wb.len = zero_byte ? 0 : (ULONG)(sizeof(rbuf) - got);
			wb.buf = rbuf + got;
			if (WSARecv(c, &wb, 1, NULL, &flags, &ov, NULL) != 0 &&
			    WSAGetLastError() != WSA_IO_PENDING)
				return 0;
			if (!wait_one(port, &bytes))
				return 0;
			got += bytes;
		}
	}
	QueryPerformanceCounter(&t1);
	return TRIPS / ((double)(t1.QuadPart - t0.QuadPart) / f.QuadPart);
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int len = sizeof(a);
	u_long nonblocking = 1;
	double best[2] = { 0, 0 };
	WSADATA wsa;
	SOCKET l, c, s;
	HANDLE port;

	WSAStartup(MAKEWORD(2, 2), &wsa);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	c = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
		       WSA_FLAG_OVERLAPPED);
	if (bind(l, (struct sockaddr *)&a, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len) ||
	    connect(c, (struct sockaddr *)&a, len)) {
		fprintf(stderr, "recv-modes: loopback set-up failed\n");
		return 1;
	}
	s = accept(l, NULL, NULL);
	ioctlsocket(c, FIONBIO, &nonblocking);
	port = CreateIoCompletionPort((HANDLE)c, NULL, 1, 1);
	CloseHandle(CreateThread(NULL, 0, echo, (LPVOID)(ULONG_PTR)s, 0,
				 NULL));
	for (int r = 0; r < ROUNDS; r++) {
		for (int zero = 0; zero < 2; zero++) {
			double rate = run(c, port, zero);

			if (rate == 0) {
				fprintf(stderr, "recv-modes: round trip failed\n");
				return 1;
			}
			if (rate > best[zero])
				best[zero] = rate;
		}
	}
	printf("recv-modes: pinned %.0f round trips/s, zero-byte %.0f "
	       "(%.2fx), best of %d rounds of %d\n",
	       best[0], best[1], best[1] / best[0], ROUNDS, TRIPS);
	closesocket(c);
	closesocket(l);
	CloseHandle(port);
	WSACleanup();
	return 0;
}
