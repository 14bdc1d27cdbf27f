/*
 * Unit tests of the Linux error egress (src/linux/error.c): every row of
 * the errno table, the fall-through to IOCX_E_SYSTEM, and the connect and
 * bind rules for running out of ephemeral ports.  Linux only: the errno
 * values are Linux's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <cmocka.h>

#include "iocx.h"
#include "linux/error.h"

struct row {
	int err;
	const char *name;
	int code;
};

#define E(err, code) { err, #err, code }

static const struct row table[] = {
	{ 0, "0", IOCX_OK },
	E(ECONNREFUSED, IOCX_E_REFUSED),
	E(ENETUNREACH, IOCX_E_NETUNREACH),
	E(ENETDOWN, IOCX_E_NETUNREACH),
	E(EHOSTUNREACH, IOCX_E_HOSTUNREACH),
	E(EHOSTDOWN, IOCX_E_HOSTUNREACH),
	E(ETIMEDOUT, IOCX_E_TIMEDOUT),
	E(EADDRINUSE, IOCX_E_ADDRINUSE),
	E(EADDRNOTAVAIL, IOCX_E_ADDRNOTAVAIL),
	E(ECONNRESET, IOCX_E_RESET),
	E(EPIPE, IOCX_E_RESET),
	E(ECONNABORTED, IOCX_E_ABORTED),
	E(ESHUTDOWN, IOCX_E_ABORTED),
	E(ENOTCONN, IOCX_E_NOTCONN),
	E(ECANCELED, IOCX_E_CANCELLED),
	E(EMFILE, IOCX_E_NOFILE),
	E(ENFILE, IOCX_E_NOFILE),
	E(ENOMEM, IOCX_E_NOMEM),
	E(ENOBUFS, IOCX_E_NOMEM),
	E(EAFNOSUPPORT, IOCX_E_AFNOSUPPORT),
	E(EPFNOSUPPORT, IOCX_E_AFNOSUPPORT),
	E(EPROTONOSUPPORT, IOCX_E_AFNOSUPPORT),
	E(EINVAL, IOCX_E_INVAL),
	E(EFAULT, IOCX_E_INVAL),
	E(EOPNOTSUPP, IOCX_E_NOTSUP),
	E(ENOPROTOOPT, IOCX_E_NOTSUP),
};

static const struct row other[] = {
	E(EACCES, IOCX_E_SYSTEM),
	E(EPERM, IOCX_E_SYSTEM),
	E(EBADF, IOCX_E_SYSTEM),
	E(ENOTSOCK, IOCX_E_SYSTEM),
	E(EINPROGRESS, IOCX_E_SYSTEM),
	E(EAGAIN, IOCX_E_SYSTEM),
	{ 99999, "99999", IOCX_E_SYSTEM },
	{ -1, "-1", IOCX_E_SYSTEM },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Compare one mapping, naming the row on failure. */
static void check(int got, int want, const char *fn, const char *row)
{
	if (got == want)
		return;
	print_error("%s(%s) = %d (%s), want %d (%s)\n", fn, row, got,
		    iocx_error_name(got), want, iocx_error_name(want));
	fail();
}

/* Every row through fn(err, ephemeral) except the one skip errno. */
static void check_rows(const struct row *rows, size_t n,
		       int (*fn)(int, bool), const char *name, bool ephemeral,
		       int skip)
{
	for (size_t i = 0; i < n; i++) {
		if (ephemeral && rows[i].err == skip)
			continue;
		check(fn(rows[i].err, ephemeral), rows[i].code, name,
		      rows[i].name);
	}
}

static void error_table_rows_map(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(table); i++)
		check(iocx__linux_error(table[i].err), table[i].code, "error",
		      table[i].name);
}

static void error_other_maps_to_system(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(other); i++)
		check(iocx__linux_error(other[i].err), other[i].code, "error",
		      other[i].name);
}

static void connect_ephemeral_addrnotavail_maps_to_ports_exhausted(void **s)
{
	(void)s;
	check(iocx__linux_error_connect(EADDRNOTAVAIL, true),
	      IOCX_E_PORTS_EXHAUSTED, "error_connect",
	      "EADDRNOTAVAIL, ephemeral");
	check(iocx__linux_error_connect(EADDRNOTAVAIL, false),
	      IOCX_E_ADDRNOTAVAIL, "error_connect",
	      "EADDRNOTAVAIL, explicit port");
	/* EADDRINUSE at connect is a 4-tuple clash, not exhaustion. */
	check(iocx__linux_error_connect(EADDRINUSE, true), IOCX_E_ADDRINUSE,
	      "error_connect", "EADDRINUSE, ephemeral");
}

static void connect_other_errors_map_like_error(void **state)
{
	(void)state;
	for (int eph = 0; eph < 2; eph++) {
		check_rows(table, N(table), iocx__linux_error_connect,
			   "error_connect", eph, EADDRNOTAVAIL);
		check_rows(other, N(other), iocx__linux_error_connect,
			   "error_connect", eph, EADDRNOTAVAIL);
	}
}

static void bind_ephemeral_addrinuse_maps_to_ports_exhausted(void **state)
{
	(void)state;
	check(iocx__linux_error_bind(EADDRINUSE, true), IOCX_E_PORTS_EXHAUSTED,
	      "error_bind", "EADDRINUSE, ephemeral");
	check(iocx__linux_error_bind(EADDRINUSE, false), IOCX_E_ADDRINUSE,
	      "error_bind", "EADDRINUSE, explicit port");
}

static void bind_other_errors_map_like_error(void **state)
{
	(void)state;
	for (int eph = 0; eph < 2; eph++) {
		check_rows(table, N(table), iocx__linux_error_bind,
			   "error_bind", eph, EADDRINUSE);
		check_rows(other, N(other), iocx__linux_error_bind,
			   "error_bind", eph, EADDRINUSE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_table_rows_map),
		cmocka_unit_test(error_other_maps_to_system),
		cmocka_unit_test(
			connect_ephemeral_addrnotavail_maps_to_ports_exhausted),
		cmocka_unit_test(connect_other_errors_map_like_error),
		cmocka_unit_test(
			bind_ephemeral_addrinuse_maps_to_ports_exhausted),
		cmocka_unit_test(bind_other_errors_map_like_error),
	};

	/* Pure functions on numbers: no fixture state to set up. */
	return cmocka_run_group_tests_name("linux_error", tests, NULL, NULL);
}
