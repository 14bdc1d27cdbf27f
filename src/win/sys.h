/*
 * Every Winsock / kernel32 call the IOCP backend makes goes through this
 * table, so tests can record calls or fail the Nth one (the SQLite VFS
 * approach: on mingw, --wrap does not reliably catch dllimport calls).
 * iocx__win_sys holds the real functions; tests swap entries and restore
 * them with iocx__win_sys_reset().  Not thread-safe to modify while an
 * engine is running operations.
 */
#ifndef IOCX_WIN_SYS_H
#define IOCX_WIN_SYS_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

struct iocx_win_sys {
	SOCKET (WSAAPI *wsa_socket)(int af, int type, int protocol,
				    LPWSAPROTOCOL_INFOW info, GROUP g,
				    DWORD flags);
	int (WSAAPI *bind)(SOCKET s, const struct sockaddr *name, int len);
	int (WSAAPI *setsockopt)(SOCKET s, int level, int name,
				 const char *val, int len);
	int (WSAAPI *closesocket)(SOCKET s);
	int (WSAAPI *getsockname)(SOCKET s, struct sockaddr *name, int *len);
	int (WSAAPI *wsa_ioctl)(SOCKET s, DWORD code, LPVOID in, DWORD in_len,
				LPVOID out, DWORD out_len, LPDWORD returned,
				LPWSAOVERLAPPED ov,
				LPWSAOVERLAPPED_COMPLETION_ROUTINE routine);
	/* NULL = the ConnectEx pointer loaded through wsa_ioctl. */
	LPFN_CONNECTEX connectex;
	/* NULL = the DisconnectEx pointer loaded through wsa_ioctl (only
	 * with options.recycle_sockets). */
	LPFN_DISCONNECTEX disconnectex;
	int (WSAAPI *wsa_send)(SOCKET s, LPWSABUF bufs, DWORD count,
			       LPDWORD sent, DWORD flags, LPWSAOVERLAPPED ov,
			       LPWSAOVERLAPPED_COMPLETION_ROUTINE routine);
	int (WSAAPI *wsa_recv)(SOCKET s, LPWSABUF bufs, DWORD count,
			       LPDWORD received, LPDWORD flags,
			       LPWSAOVERLAPPED ov,
			       LPWSAOVERLAPPED_COMPLETION_ROUTINE routine);
	int (WSAAPI *shutdown)(SOCKET s, int how);
	HANDLE (WINAPI *create_io_completion_port)(HANDLE file, HANDLE port,
						   ULONG_PTR key,
						   DWORD threads);
	BOOL (WINAPI *cancel_io_ex)(HANDLE file, LPOVERLAPPED ov);
	/*
	 * Remove file's completion-port association: NtSetInformationFile
	 * with FileReplaceCompletionInformation and a NULL port (Windows 8.1
	 * and later).  Returns the NTSTATUS (STATUS_NOT_IMPLEMENTED when
	 * ntdll lacks the call).
	 */
	LONG (WINAPI *unassociate)(HANDLE file);
	BOOL (WINAPI *post_queued_completion_status)(HANDLE port, DWORD bytes,
						     ULONG_PTR key,
						     LPOVERLAPPED ov);
	BOOL (WINAPI *get_queued_completion_status_ex)(HANDLE port,
						       LPOVERLAPPED_ENTRY e,
						       ULONG count,
						       PULONG removed,
						       DWORD timeout,
						       BOOL alertable);
	/* Name lookups of the engine's own resolver (win/resolve_gai.c). */
	int (WSAAPI *get_addr_info_ex)(PCWSTR name, PCWSTR service,
				       DWORD name_space, LPGUID nsp_id,
				       const ADDRINFOEXW *hints,
				       PADDRINFOEXW *result, PTIMEVAL timeout,
				       LPOVERLAPPED ov,
				       LPLOOKUPSERVICE_COMPLETION_ROUTINE done,
				       LPHANDLE handle);
	/*
	 * GetAddrInfoExCancel (Windows 8 and later; mingw-w64 does not
	 * declare it, so it is looked up in ws2_32.dll): WSA_INVALID_HANDLE
	 * when the lookup is over or unknown, WSAEOPNOTSUPP when ws2_32
	 * lacks the call.
	 */
	int (WSAAPI *get_addr_info_ex_cancel)(LPHANDLE handle);
};

extern struct iocx_win_sys iocx__win_sys;

/* Restore every entry of iocx__win_sys to the real function. */
void iocx__win_sys_reset(void);

#endif /* IOCX_WIN_SYS_H */
