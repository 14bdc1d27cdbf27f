/*
 * The Linux backends' one error egress.  A synchronous failure brings its
 * errno, an io_uring completion its negated res, an epoll readiness the
 * socket's SO_ERROR: all three are errno values and meet here.
 */
#include <errno.h>
#include <stddef.h>

#include "iocx.h"
#include "linux/error.h"

struct code_map {
	int os;
	int iocx;
};

static const struct code_map errno_map[] = {
	{ ECONNREFUSED, IOCX_E_REFUSED },
	{ ENETUNREACH, IOCX_E_NETUNREACH },
	{ ENETDOWN, IOCX_E_NETUNREACH },
	{ EHOSTUNREACH, IOCX_E_HOSTUNREACH },
	{ EHOSTDOWN, IOCX_E_HOSTUNREACH },
	{ ETIMEDOUT, IOCX_E_TIMEDOUT },
	{ EADDRINUSE, IOCX_E_ADDRINUSE },
	{ EADDRNOTAVAIL, IOCX_E_ADDRNOTAVAIL },
	{ ECONNRESET, IOCX_E_RESET },
	{ EPIPE, IOCX_E_RESET },
	{ ECONNABORTED, IOCX_E_ABORTED },
	{ ESHUTDOWN, IOCX_E_ABORTED },
	{ ENOTCONN, IOCX_E_NOTCONN },
	{ ECANCELED, IOCX_E_CANCELLED },
	{ EMFILE, IOCX_E_NOFILE },
	{ ENFILE, IOCX_E_NOFILE },
	{ ENOMEM, IOCX_E_NOMEM },
	{ ENOBUFS, IOCX_E_NOMEM },
	{ EAFNOSUPPORT, IOCX_E_AFNOSUPPORT },
	{ EPFNOSUPPORT, IOCX_E_AFNOSUPPORT },
	{ EPROTONOSUPPORT, IOCX_E_AFNOSUPPORT },
	{ EINVAL, IOCX_E_INVAL },
	{ EFAULT, IOCX_E_INVAL },
	{ EOPNOTSUPP, IOCX_E_NOTSUP },
	{ ENOPROTOOPT, IOCX_E_NOTSUP },
};

/* See linux/error.h. */
int iocx__linux_error(int err)
{
	if (err == 0)
		return IOCX_OK;
	for (size_t i = 0; i < sizeof(errno_map) / sizeof(*errno_map); i++) {
		if (errno_map[i].os == err)
			return errno_map[i].iocx;
	}
	return IOCX_E_SYSTEM;
}

/* See linux/error.h. */
int iocx__linux_error_connect(int err, bool ephemeral)
{
	if (ephemeral && err == EADDRNOTAVAIL)
		return IOCX_E_PORTS_EXHAUSTED;
	return iocx__linux_error(err);
}

/* See linux/error.h. */
int iocx__linux_error_bind(int err, bool ephemeral)
{
	if (ephemeral && err == EADDRINUSE)
		return IOCX_E_PORTS_EXHAUSTED;
	return iocx__linux_error(err);
}
