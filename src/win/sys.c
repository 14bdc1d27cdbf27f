/*
 * The real Winsock / kernel32 functions behind iocx__win_sys.
 */
#include "win/sys.h"

static const struct iocx_win_sys real_sys = {
	.wsa_socket = WSASocketW,
	.bind = bind,
	.setsockopt = setsockopt,
	.closesocket = closesocket,
	.wsa_ioctl = WSAIoctl,
	.connectex = NULL,
	.wsa_send = WSASend,
	.wsa_recv = WSARecv,
	.shutdown = shutdown,
	.create_io_completion_port = CreateIoCompletionPort,
	.cancel_io_ex = CancelIoEx,
	.post_queued_completion_status = PostQueuedCompletionStatus,
	.get_queued_completion_status_ex = GetQueuedCompletionStatusEx,
};

struct iocx_win_sys iocx__win_sys = real_sys;

/* See win/sys.h. */
void iocx__win_sys_reset(void)
{
	iocx__win_sys = real_sys;
}
