/*
 * The real Winsock / kernel32 functions behind iocx__win_sys.
 */
#include "win/sys.h"

/*
 * One initializer for both tables: C11 (and clang, and MSVC) do not take
 * another object, even a const one, as a static initializer.
 */
#define REAL_SYS { \
	.wsa_socket = WSASocketW, \
	.bind = bind, \
	.setsockopt = setsockopt, \
	.closesocket = closesocket, \
	.wsa_ioctl = WSAIoctl, \
	.connectex = NULL, \
	.wsa_send = WSASend, \
	.wsa_recv = WSARecv, \
	.shutdown = shutdown, \
	.create_io_completion_port = CreateIoCompletionPort, \
	.cancel_io_ex = CancelIoEx, \
	.post_queued_completion_status = PostQueuedCompletionStatus, \
	.get_queued_completion_status_ex = GetQueuedCompletionStatusEx, \
}

static const struct iocx_win_sys real_sys = REAL_SYS;

struct iocx_win_sys iocx__win_sys = REAL_SYS;

/* See win/sys.h. */
void iocx__win_sys_reset(void)
{
	iocx__win_sys = real_sys;
}
