/*
 * The one table of iocx error codes: name and message per code, and the
 * calling thread's OS code of the last synchronous connect failure.
 */
#include "iocx.h"
#include "engine.h"

/* See iocx__set_last_os_error in engine.h. */
static _Thread_local uint32_t last_os_error;

struct error_entry {
	const char *name;
	const char *message;
};

/* Indexed by -code; IOCX_OK is entry 0. */
static const struct error_entry errors[IOCX_ERROR_COUNT] = {
	{ "IOCX_OK", "success" },
	{ "IOCX_E_INVAL", "invalid argument" },
	{ "IOCX_E_AFNOSUPPORT", "address family not supported" },
	{ "IOCX_E_ADDRLEN", "address length too short for its family" },
	{ "IOCX_E_ADDRNOTAVAIL", "address not available" },
	{ "IOCX_E_SHUTDOWN", "engine is shutting down" },
	{ "IOCX_E_LIMIT", "limit reached (connects in flight or bytes queued)" },
	{ "IOCX_E_NOMEM", "out of memory" },
	{ "IOCX_E_ALREADY", "already requested, or no longer possible" },
	{ "IOCX_E_MSGSIZE", "first payload too large" },
	{ "IOCX_E_REFUSED", "connection refused" },
	{ "IOCX_E_NETUNREACH", "network unreachable" },
	{ "IOCX_E_HOSTUNREACH", "host unreachable" },
	{ "IOCX_E_TIMEDOUT", "timed out" },
	{ "IOCX_E_ADDRINUSE", "address already in use" },
	{ "IOCX_E_PORTS_EXHAUSTED", "no ephemeral port available" },
	{ "IOCX_E_ABORTED", "connection aborted" },
	{ "IOCX_E_RESET", "connection reset by peer" },
	{ "IOCX_E_CANCELLED", "operation cancelled" },
	{ "IOCX_E_NOTSUP", "not supported" },
	{ "IOCX_E_INCALLBACK", "not allowed from inside a callback" },
	{ "IOCX_E_SYSTEM", "operating system error" },
	{ "IOCX_E_EOF", "peer closed the connection" },
	{ "IOCX_E_NOTCONN", "connection is not open" },
	{ "IOCX_E_IDLE", "closed after the idle limit" },
	{ "IOCX_E_NOFILE", "out of file descriptors or sockets" },
	{ "IOCX_E_DETACHED", "socket detached from the engine" },
	{ "IOCX_E_BUSY", "operation still pending" },
	{ "IOCX_E_NAME", "host name does not exist" },
	{ "IOCX_E_RESOLVE", "host name resolution failed" },
};

static const struct error_entry *error_lookup(int code)
{
	static const struct error_entry unknown = {
		"IOCX_E_UNKNOWN", "unknown error code"
	};

	if (code > 0 || code <= -IOCX_ERROR_COUNT)
		return &unknown;
	return &errors[-code];
}

/* See iocx.h. */
const char *iocx_error_name(int code)
{
	return error_lookup(code)->name;
}

/* See iocx.h. */
const char *iocx_strerror(int code)
{
	return error_lookup(code)->message;
}

/* See iocx.h. */
uint32_t iocx_last_os_error(void)
{
	return last_os_error;
}

/* See engine.h. */
void iocx__set_last_os_error(uint32_t code)
{
	last_os_error = code;
}
