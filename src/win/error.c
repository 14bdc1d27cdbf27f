/*
 * The Windows backend's one error egress.  Completions are classified by
 * their NTSTATUS (OVERLAPPED_ENTRY.Internal), because the Win32 and WSA
 * views of one failure differ (a reset is 64 from GetQueuedCompletionStatus
 * but WSAECONNRESET from WSAGetOverlappedResult).  Only numbers here, so
 * the tables build and are tested natively as well.
 */
#include <stddef.h>

#include "iocx.h"
#include "win/error.h"

struct code_map {
	uint32_t os;
	int iocx;
};

static const struct code_map ntstatus_map[] = {
	{ 0xC0000120u, IOCX_E_CANCELLED },	/* STATUS_CANCELLED */
	{ 0xC0000236u, IOCX_E_REFUSED },	/* CONNECTION_REFUSED */
	{ 0xC00000BCu, IOCX_E_REFUSED },	/* REMOTE_NOT_LISTENING */
	{ 0xC00000B5u, IOCX_E_TIMEDOUT },	/* IO_TIMEOUT */
	{ 0xC000013Fu, IOCX_E_TIMEDOUT },	/* LINK_TIMEOUT */
	{ 0xC000020Du, IOCX_E_RESET },		/* CONNECTION_RESET */
	{ 0xC000020Cu, IOCX_E_RESET },		/* CONNECTION_DISCONNECTED */
	{ 0xC000013Cu, IOCX_E_RESET },		/* REMOTE_DISCONNECT */
	{ 0xC000013Eu, IOCX_E_RESET },		/* LINK_FAILED */
	{ 0xC000023Fu, IOCX_E_RESET },		/* PORT_UNREACHABLE */
	{ 0xC0000237u, IOCX_E_RESET },		/* GRACEFUL_DISCONNECT */
	{ 0xC0000241u, IOCX_E_ABORTED },	/* CONNECTION_ABORTED */
	{ 0xC000013Bu, IOCX_E_ABORTED },	/* LOCAL_DISCONNECT */
	{ 0xC000020Fu, IOCX_E_ABORTED },	/* TRANSACTION_ABORTED */
	{ 0x8000000Au, IOCX_E_ABORTED },	/* HANDLES_CLOSED (Wine) */
	{ 0xC0000140u, IOCX_E_NOTCONN },	/* INVALID_CONNECTION */
	{ 0xC000023Du, IOCX_E_HOSTUNREACH },	/* HOST_UNREACHABLE */
	{ 0xC0000350u, IOCX_E_HOSTUNREACH },	/* HOST_DOWN */
	{ 0xC000023Cu, IOCX_E_NETUNREACH },	/* NETWORK_UNREACHABLE */
	{ 0xC000023Eu, IOCX_E_NETUNREACH },	/* PROTOCOL_UNREACHABLE */
	{ 0xC00000BEu, IOCX_E_NETUNREACH },	/* BAD_NETWORK_PATH */
	{ 0xC000020Au, IOCX_E_ADDRINUSE },	/* ADDRESS_ALREADY_EXISTS */
	{ 0xC0000043u, IOCX_E_ADDRINUSE },	/* SHARING_VIOLATION */
	{ 0xC0000141u, IOCX_E_ADDRNOTAVAIL },	/* INVALID_ADDRESS */
	{ 0xC0000207u, IOCX_E_ADDRNOTAVAIL },	/* INVALID_ADDRESS_COMPONENT */
	{ 0xC0000209u, IOCX_E_PORTS_EXHAUSTED },	/* TOO_MANY_ADDRESSES */
	{ 0xC0000017u, IOCX_E_NOMEM },		/* NO_MEMORY */
	{ 0xC000009Au, IOCX_E_NOMEM },		/* INSUFFICIENT_RESOURCES */
	{ 0xC00000BBu, IOCX_E_NOTSUP },		/* NOT_SUPPORTED */
};

static const struct code_map wsa_map[] = {
	{ 10061, IOCX_E_REFUSED },		/* WSAECONNREFUSED */
	{ 1225, IOCX_E_REFUSED },		/* ERROR_CONNECTION_REFUSED */
	{ 10051, IOCX_E_NETUNREACH },		/* WSAENETUNREACH */
	{ 1231, IOCX_E_NETUNREACH },		/* ERROR_NETWORK_UNREACHABLE */
	{ 10065, IOCX_E_HOSTUNREACH },		/* WSAEHOSTUNREACH */
	{ 10064, IOCX_E_HOSTUNREACH },		/* WSAEHOSTDOWN */
	{ 1232, IOCX_E_HOSTUNREACH },		/* ERROR_HOST_UNREACHABLE */
	{ 10060, IOCX_E_TIMEDOUT },		/* WSAETIMEDOUT */
	{ 121, IOCX_E_TIMEDOUT },		/* ERROR_SEM_TIMEOUT */
	{ 10048, IOCX_E_ADDRINUSE },		/* WSAEADDRINUSE */
	{ 10049, IOCX_E_ADDRNOTAVAIL },		/* WSAEADDRNOTAVAIL */
	{ 10053, IOCX_E_ABORTED },		/* WSAECONNABORTED */
	{ 1236, IOCX_E_ABORTED },		/* ERROR_CONNECTION_ABORTED */
	{ 10058, IOCX_E_ABORTED },		/* WSAESHUTDOWN */
	{ 10057, IOCX_E_NOTCONN },		/* WSAENOTCONN */
	{ 10054, IOCX_E_RESET },		/* WSAECONNRESET */
	{ 64, IOCX_E_RESET },			/* ERROR_NETNAME_DELETED */
	{ 995, IOCX_E_CANCELLED },		/* WSA_OPERATION_ABORTED */
	{ 10024, IOCX_E_NOFILE },		/* WSAEMFILE */
	{ 10055, IOCX_E_NOMEM },		/* WSAENOBUFS */
	{ 8, IOCX_E_NOMEM },			/* WSA_NOT_ENOUGH_MEMORY */
	{ 14, IOCX_E_NOMEM },			/* ERROR_OUTOFMEMORY */
	{ 10047, IOCX_E_AFNOSUPPORT },		/* WSAEAFNOSUPPORT */
	{ 10046, IOCX_E_AFNOSUPPORT },		/* WSAEPFNOSUPPORT */
	{ 10043, IOCX_E_AFNOSUPPORT },		/* WSAEPROTONOSUPPORT */
	{ 10022, IOCX_E_INVAL },		/* WSAEINVAL */
	{ 10014, IOCX_E_INVAL },		/* WSAEFAULT */
	{ 87, IOCX_E_INVAL },			/* ERROR_INVALID_PARAMETER */
	{ 10045, IOCX_E_NOTSUP },		/* WSAEOPNOTSUPP */
	{ 10042, IOCX_E_NOTSUP },		/* WSAENOPROTOOPT */
};

static int lookup(const struct code_map *map, size_t n, uint32_t os)
{
	for (size_t i = 0; i < n; i++) {
		if (map[i].os == os)
			return map[i].iocx;
	}
	return IOCX_E_SYSTEM;
}

/* See win/error.h. */
int iocx__win_error_from_ntstatus(uint32_t status)
{
	/* NT_SUCCESS: severity "success" (00) or "informational" (01). */
	if ((status >> 30) <= 1)
		return IOCX_OK;
	return lookup(ntstatus_map, sizeof(ntstatus_map) / sizeof(*ntstatus_map),
		      status);
}

/* See win/error.h. */
int iocx__win_error_from_wsa(int err)
{
	if (err == 0)
		return IOCX_OK;
	return lookup(wsa_map, sizeof(wsa_map) / sizeof(*wsa_map),
		      (uint32_t)err);
}

/* See win/error.h. */
int iocx__win_error_from_socket(int err)
{
	int rc;

	/* Out of socket handles, WSASocket says WSAEMFILE or WSAENOBUFS. */
	if (err == 10055)
		return IOCX_E_NOFILE;
	rc = iocx__win_error_from_wsa(err);
	/* Any other refusal to create one is not the caller's bad input. */
	return rc == IOCX_E_INVAL ? IOCX_E_SYSTEM : rc;
}

/* See win/error.h. */
int iocx__win_error_from_connect(uint32_t status, bool wildcard)
{
	int rc = iocx__win_error_from_ntstatus(status);

	/* ADDRINUSE: ADDRESS_ALREADY_EXISTS, SHARING_VIOLATION (the
	 * WSAEADDRINUSE of the completion); NOMEM: INSUFFICIENT_RESOURCES
	 * (its WSAENOBUFS). */
	if (wildcard && (rc == IOCX_E_ADDRINUSE || rc == IOCX_E_NOMEM))
		return IOCX_E_PORTS_EXHAUSTED;
	return rc;
}

/* See win/error.h. */
int iocx__win_error_from_bind(int err, bool ephemeral)
{
	/* Out of ephemeral ports, Windows fails bind(port 0) with
	 * WSAENOBUFS, some versions with WSAEADDRINUSE. */
	if (ephemeral && (err == 10055 || err == 10048))
		return IOCX_E_PORTS_EXHAUSTED;
	return iocx__win_error_from_wsa(err);
}

/* See win/error.h. */
int iocx__win_error_from_gai(int err)
{
	switch (err) {
	case 0:
		return IOCX_OK;
	case 11001:		/* WSAHOST_NOT_FOUND, EAI_NONAME, EAI_NODATA */
	case 11004:		/* WSANO_DATA */
		return IOCX_E_NAME;
	case 10111:		/* WSA_E_CANCELLED */
		return IOCX_E_CANCELLED;
	default:		/* WSATRY_AGAIN (EAI_AGAIN), WSANO_RECOVERY */
		return IOCX_E_RESOLVE;
	}
}
