/*
 * The Windows backend's one error egress: raw NTSTATUS / WSA / Win32 codes
 * in, iocx codes out.  Pure functions on numbers (no Windows headers), so
 * the table is unit-tested natively too.
 */
#ifndef IOCX_WIN_ERROR_H
#define IOCX_WIN_ERROR_H

#include <stdbool.h>
#include <stdint.h>

/* Map the NTSTATUS of a completion entry (OVERLAPPED.Internal). */
int iocx__win_error_from_ntstatus(uint32_t status);

/* Map a WSA or Win32 error from a call that failed synchronously. */
int iocx__win_error_from_wsa(int err);

/*
 * Map a failed socket creation (WSASocket): WSAENOBUFS and WSAEMFILE are
 * IOCX_E_NOFILE (no socket handle left), WSAEINVAL IOCX_E_SYSTEM; others
 * as iocx__win_error_from_wsa.
 */
int iocx__win_error_from_socket(int err);

/*
 * Map a bind() failure: when binding to port 0 (ephemeral), running out of
 * ports shows as WSAENOBUFS or WSAEADDRINUSE and maps to
 * IOCX_E_PORTS_EXHAUSTED; otherwise as iocx__win_error_from_wsa.
 */
int iocx__win_error_from_bind(int err, bool ephemeral);

/*
 * Map the NTSTATUS of a finished ConnectEx.  On a wildcard-bound socket
 * (whose port may be chosen only at connect time, SO_REUSE_UNICASTPORT)
 * the codes that stand for WSAEADDRINUSE and WSAENOBUFS mean the ports
 * ran out: IOCX_E_PORTS_EXHAUSTED; otherwise as
 * iocx__win_error_from_ntstatus.
 */
int iocx__win_error_from_connect(uint32_t status, bool wildcard);

/*
 * Map the code of a finished GetAddrInfoExW: 0 is IOCX_OK; WSAHOST_NOT_FOUND
 * (EAI_NONAME) and WSANO_DATA (the name has no address of the family) are
 * IOCX_E_NAME; WSA_E_CANCELLED is IOCX_E_CANCELLED; anything else
 * (WSATRY_AGAIN, WSANO_RECOVERY, out of memory, ...) is IOCX_E_RESOLVE.
 */
int iocx__win_error_from_gai(int err);

#endif /* IOCX_WIN_ERROR_H */
