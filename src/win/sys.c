/*
 * The real Winsock / kernel32 functions behind iocx__win_sys.
 */
#include "win/sys.h"

#include <string.h>

/* What ntdll's NtSetInformationFile takes (ntifs.h is not in mingw). */
struct io_status {
	union {
		LONG status;
		PVOID pointer;
	} u;
	ULONG_PTR information;
};

struct completion_info {
	HANDLE port;
	PVOID key;
};

typedef LONG (NTAPI *set_information_file_fn)(HANDLE file,
					      struct io_status *iosb,
					      PVOID info, ULONG len,
					      ULONG info_class);

#define FILE_REPLACE_COMPLETION_INFORMATION 61
#define STATUS_NOT_IMPLEMENTED_ ((LONG)0xC0000002)

static LONG WINAPI unassociate(HANDLE file)
{
	struct completion_info info = { NULL, NULL };
	struct io_status iosb;
	set_information_file_fn fn;
	HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

	if (!ntdll)
		return STATUS_NOT_IMPLEMENTED_;
	fn = (set_information_file_fn)(void (*)(void))GetProcAddress(
		ntdll, "NtSetInformationFile");
	if (!fn)
		return STATUS_NOT_IMPLEMENTED_;
	memset(&iosb, 0, sizeof(iosb));
	return fn(file, &iosb, &info, sizeof(info),
		  FILE_REPLACE_COMPLETION_INFORMATION);
}

typedef int (WSAAPI *gai_cancel_fn)(LPHANDLE handle);

static int WSAAPI gai_cancel(LPHANDLE handle)
{
	HMODULE ws2 = GetModuleHandleW(L"ws2_32.dll");
	gai_cancel_fn fn = NULL;

	if (ws2)
		fn = (gai_cancel_fn)(void (*)(void))GetProcAddress(
			ws2, "GetAddrInfoExCancel");
	if (!fn)
		return WSAEOPNOTSUPP;
	return fn(handle);
}

/*
 * One initializer for both tables: C11 (and clang, and MSVC) do not take
 * another object, even a const one, as a static initializer.
 */
#define REAL_SYS { \
	.wsa_socket = WSASocketW, \
	.bind = bind, \
	.setsockopt = setsockopt, \
	.closesocket = closesocket, \
	.getsockname = getsockname, \
	.wsa_ioctl = WSAIoctl, \
	.connectex = NULL, \
	.disconnectex = NULL, \
	.wsa_send = WSASend, \
	.wsa_recv = WSARecv, \
	.shutdown = shutdown, \
	.create_io_completion_port = CreateIoCompletionPort, \
	.cancel_io_ex = CancelIoEx, \
	.unassociate = unassociate, \
	.post_queued_completion_status = PostQueuedCompletionStatus, \
	.get_queued_completion_status_ex = GetQueuedCompletionStatusEx, \
	.get_addr_info_ex = GetAddrInfoExW, \
	.get_addr_info_ex_cancel = gai_cancel, \
}

static const struct iocx_win_sys real_sys = REAL_SYS;

struct iocx_win_sys iocx__win_sys = REAL_SYS;

/* See win/sys.h. */
void iocx__win_sys_reset(void)
{
	iocx__win_sys = real_sys;
}
