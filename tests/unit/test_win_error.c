/*
 * Unit tests of the Windows error egress (src/win/error.c): every row of
 * the NTSTATUS, WSA/Win32, bind and socket-creation mappings.  The
 * functions are pure arithmetic on numbers, so this runs natively as well
 * as under Wine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "iocx.h"
#include "win/error.h"

struct nt_row {
	uint32_t status;
	const char *name;
	int code;
};

struct wsa_row {
	int err;
	const char *name;
	int code;
};

#define NT(st, code) { st, #st, code }
#define WSA(err, name, code) { err, name, code }

static const struct nt_row nt_success[] = {
	NT(0x00000000u, IOCX_OK),		/* STATUS_SUCCESS */
	NT(0x00000001u, IOCX_OK),
	NT(0x00000103u, IOCX_OK),		/* STATUS_PENDING */
	NT(0x3FFFFFFFu, IOCX_OK),
	NT(0x40000000u, IOCX_OK),		/* informational */
	NT(0x40000003u, IOCX_OK),
	NT(0x7FFFFFFFu, IOCX_OK),
};

static const struct nt_row nt_table[] = {
	NT(0xC0000120u, IOCX_E_CANCELLED),	/* STATUS_CANCELLED */
	NT(0xC0000236u, IOCX_E_REFUSED),	/* CONNECTION_REFUSED */
	NT(0xC00000BCu, IOCX_E_REFUSED),	/* REMOTE_NOT_LISTENING */
	NT(0xC00000B5u, IOCX_E_TIMEDOUT),	/* IO_TIMEOUT */
	NT(0xC000013Fu, IOCX_E_TIMEDOUT),	/* LINK_TIMEOUT */
	NT(0xC000020Du, IOCX_E_RESET),		/* CONNECTION_RESET */
	NT(0xC000020Cu, IOCX_E_RESET),		/* CONNECTION_DISCONNECTED */
	NT(0xC000013Cu, IOCX_E_RESET),		/* REMOTE_DISCONNECT */
	NT(0xC000013Eu, IOCX_E_RESET),		/* LINK_FAILED */
	NT(0xC000023Fu, IOCX_E_RESET),		/* PORT_UNREACHABLE */
	NT(0xC0000237u, IOCX_E_RESET),		/* GRACEFUL_DISCONNECT */
	NT(0xC0000241u, IOCX_E_ABORTED),	/* CONNECTION_ABORTED */
	NT(0xC000013Bu, IOCX_E_ABORTED),	/* LOCAL_DISCONNECT */
	NT(0xC000020Fu, IOCX_E_ABORTED),	/* TRANSACTION_ABORTED */
	NT(0x8000000Au, IOCX_E_ABORTED),	/* HANDLES_CLOSED (Wine) */
	NT(0xC0000140u, IOCX_E_NOTCONN),	/* INVALID_CONNECTION */
	NT(0xC000023Du, IOCX_E_HOSTUNREACH),	/* HOST_UNREACHABLE */
	NT(0xC0000350u, IOCX_E_HOSTUNREACH),	/* HOST_DOWN */
	NT(0xC000023Cu, IOCX_E_NETUNREACH),	/* NETWORK_UNREACHABLE */
	NT(0xC000023Eu, IOCX_E_NETUNREACH),	/* PROTOCOL_UNREACHABLE */
	NT(0xC00000BEu, IOCX_E_NETUNREACH),	/* BAD_NETWORK_PATH */
	NT(0xC000020Au, IOCX_E_ADDRINUSE),	/* ADDRESS_ALREADY_EXISTS */
	NT(0xC0000043u, IOCX_E_ADDRINUSE),	/* SHARING_VIOLATION */
	NT(0xC0000141u, IOCX_E_ADDRNOTAVAIL),	/* INVALID_ADDRESS */
	NT(0xC0000207u, IOCX_E_ADDRNOTAVAIL),	/* INVALID_ADDRESS_COMPONENT */
	NT(0xC0000209u, IOCX_E_PORTS_EXHAUSTED),	/* TOO_MANY_ADDRESSES */
	NT(0xC0000017u, IOCX_E_NOMEM),		/* NO_MEMORY */
	NT(0xC000009Au, IOCX_E_NOMEM),		/* INSUFFICIENT_RESOURCES */
	NT(0xC00000BBu, IOCX_E_NOTSUP),		/* NOT_SUPPORTED */
};

static const struct nt_row nt_other[] = {
	NT(0xC0000024u, IOCX_E_SYSTEM),		/* OBJECT_TYPE_MISMATCH */
	NT(0x80000005u, IOCX_E_SYSTEM),		/* BUFFER_OVERFLOW */
	NT(0x80000000u, IOCX_E_SYSTEM),
	NT(0xC0000001u, IOCX_E_SYSTEM),		/* UNSUCCESSFUL */
	NT(0xC0000008u, IOCX_E_SYSTEM),		/* INVALID_HANDLE */
	NT(0xFFFFFFFFu, IOCX_E_SYSTEM),
};

static const struct wsa_row wsa_table[] = {
	WSA(0, "0", IOCX_OK),
	WSA(10061, "WSAECONNREFUSED", IOCX_E_REFUSED),
	WSA(1225, "ERROR_CONNECTION_REFUSED", IOCX_E_REFUSED),
	WSA(10051, "WSAENETUNREACH", IOCX_E_NETUNREACH),
	WSA(1231, "ERROR_NETWORK_UNREACHABLE", IOCX_E_NETUNREACH),
	WSA(10065, "WSAEHOSTUNREACH", IOCX_E_HOSTUNREACH),
	WSA(10064, "WSAEHOSTDOWN", IOCX_E_HOSTUNREACH),
	WSA(1232, "ERROR_HOST_UNREACHABLE", IOCX_E_HOSTUNREACH),
	WSA(10060, "WSAETIMEDOUT", IOCX_E_TIMEDOUT),
	WSA(121, "ERROR_SEM_TIMEOUT", IOCX_E_TIMEDOUT),
	WSA(10048, "WSAEADDRINUSE", IOCX_E_ADDRINUSE),
	WSA(10049, "WSAEADDRNOTAVAIL", IOCX_E_ADDRNOTAVAIL),
	WSA(10053, "WSAECONNABORTED", IOCX_E_ABORTED),
	WSA(1236, "ERROR_CONNECTION_ABORTED", IOCX_E_ABORTED),
	WSA(10058, "WSAESHUTDOWN", IOCX_E_ABORTED),
	WSA(10057, "WSAENOTCONN", IOCX_E_NOTCONN),
	WSA(10054, "WSAECONNRESET", IOCX_E_RESET),
	WSA(64, "ERROR_NETNAME_DELETED", IOCX_E_RESET),
	WSA(995, "WSA_OPERATION_ABORTED", IOCX_E_CANCELLED),
	WSA(10024, "WSAEMFILE", IOCX_E_NOFILE),
	WSA(10055, "WSAENOBUFS", IOCX_E_NOMEM),
	WSA(8, "WSA_NOT_ENOUGH_MEMORY", IOCX_E_NOMEM),
	WSA(14, "ERROR_OUTOFMEMORY", IOCX_E_NOMEM),
	WSA(10047, "WSAEAFNOSUPPORT", IOCX_E_AFNOSUPPORT),
	WSA(10046, "WSAEPFNOSUPPORT", IOCX_E_AFNOSUPPORT),
	WSA(10043, "WSAEPROTONOSUPPORT", IOCX_E_AFNOSUPPORT),
	WSA(10022, "WSAEINVAL", IOCX_E_INVAL),
	WSA(10014, "WSAEFAULT", IOCX_E_INVAL),
	WSA(87, "ERROR_INVALID_PARAMETER", IOCX_E_INVAL),
	WSA(10045, "WSAEOPNOTSUPP", IOCX_E_NOTSUP),
	WSA(10042, "WSAENOPROTOOPT", IOCX_E_NOTSUP),
};

static const struct wsa_row wsa_other[] = {
	WSA(10038, "WSAENOTSOCK", IOCX_E_SYSTEM),
	WSA(10013, "WSAEACCES", IOCX_E_SYSTEM),
	WSA(1, "ERROR_INVALID_FUNCTION", IOCX_E_SYSTEM),
	WSA(99999, "99999", IOCX_E_SYSTEM),
	WSA(-1, "-1", IOCX_E_SYSTEM),
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

static void check_nt(const struct nt_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check(iocx__win_error_from_ntstatus(rows[i].status),
		      rows[i].code, "from_ntstatus", rows[i].name);
}

static void check_wsa(const struct wsa_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check(iocx__win_error_from_wsa(rows[i].err), rows[i].code,
		      "from_wsa", rows[i].name);
}

static void from_ntstatus_success_maps_to_ok(void **state)
{
	(void)state;
	check_nt(nt_success, N(nt_success));
}

static void from_ntstatus_table_rows_map(void **state)
{
	(void)state;
	check_nt(nt_table, N(nt_table));
}

static void from_ntstatus_other_maps_to_system(void **state)
{
	(void)state;
	check_nt(nt_other, N(nt_other));
}

static void from_wsa_table_rows_map(void **state)
{
	(void)state;
	check_wsa(wsa_table, N(wsa_table));
}

static void from_wsa_other_maps_to_system(void **state)
{
	(void)state;
	check_wsa(wsa_other, N(wsa_other));
}

static void from_bind_ephemeral_exhaustion_maps_to_ports_exhausted(void **s)
{
	(void)s;
	check(iocx__win_error_from_bind(10055, true), IOCX_E_PORTS_EXHAUSTED,
	      "from_bind", "WSAENOBUFS, ephemeral");
	check(iocx__win_error_from_bind(10048, true), IOCX_E_PORTS_EXHAUSTED,
	      "from_bind", "WSAEADDRINUSE, ephemeral");
}

static void from_connect_wildcard_addrinuse_nobufs_are_ports_exhausted(
	void **state)
{
	(void)state;
	check(iocx__win_error_from_connect(0xC000020Au, true),
	      IOCX_E_PORTS_EXHAUSTED, "from_connect",
	      "ADDRESS_ALREADY_EXISTS, wildcard");
	check(iocx__win_error_from_connect(0xC0000043u, true),
	      IOCX_E_PORTS_EXHAUSTED, "from_connect",
	      "SHARING_VIOLATION, wildcard");
	check(iocx__win_error_from_connect(0xC000009Au, true),
	      IOCX_E_PORTS_EXHAUSTED, "from_connect",
	      "INSUFFICIENT_RESOURCES, wildcard");
	/* Bound by the caller: what the status says. */
	check(iocx__win_error_from_connect(0xC000020Au, false),
	      IOCX_E_ADDRINUSE, "from_connect", "ADDRESS_ALREADY_EXISTS");
	check(iocx__win_error_from_connect(0xC000009Au, false), IOCX_E_NOMEM,
	      "from_connect", "INSUFFICIENT_RESOURCES");
	/* Other outcomes are untouched, also on a wildcard socket. */
	check(iocx__win_error_from_connect(0xC0000236u, true), IOCX_E_REFUSED,
	      "from_connect", "CONNECTION_REFUSED, wildcard");
	check(iocx__win_error_from_connect(0, true), IOCX_OK, "from_connect",
	      "SUCCESS, wildcard");
}

static void from_bind_explicit_port_maps_like_wsa(void **state)
{
	size_t i;

	(void)state;
	check(iocx__win_error_from_bind(10048, false), IOCX_E_ADDRINUSE,
	      "from_bind", "WSAEADDRINUSE, explicit port");
	check(iocx__win_error_from_bind(10055, false), IOCX_E_NOMEM,
	      "from_bind", "WSAENOBUFS, explicit port");
	for (i = 0; i < N(wsa_table); i++)
		check(iocx__win_error_from_bind(wsa_table[i].err, false),
		      wsa_table[i].code, "from_bind", wsa_table[i].name);
	for (i = 0; i < N(wsa_other); i++)
		check(iocx__win_error_from_bind(wsa_other[i].err, false),
		      wsa_other[i].code, "from_bind", wsa_other[i].name);
}

static void from_bind_ephemeral_other_errors_map_like_wsa(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(wsa_table); i++) {
		if (wsa_table[i].err == 10055 || wsa_table[i].err == 10048)
			continue;
		check(iocx__win_error_from_bind(wsa_table[i].err, true),
		      wsa_table[i].code, "from_bind", wsa_table[i].name);
	}
	for (i = 0; i < N(wsa_other); i++)
		check(iocx__win_error_from_bind(wsa_other[i].err, true),
		      wsa_other[i].code, "from_bind", wsa_other[i].name);
}

static void from_socket_out_of_handles_maps_to_nofile(void **state)
{
	(void)state;
	check(iocx__win_error_from_socket(10024), IOCX_E_NOFILE,
	      "from_socket", "WSAEMFILE");
	check(iocx__win_error_from_socket(10055), IOCX_E_NOFILE,
	      "from_socket", "WSAENOBUFS");
	check(iocx__win_error_from_socket(10022), IOCX_E_SYSTEM,
	      "from_socket", "WSAEINVAL");
}

static void from_socket_other_errors_map_like_wsa(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(wsa_table); i++) {
		int e = wsa_table[i].err;

		if (e == 10055 || wsa_table[i].code == IOCX_E_INVAL)
			continue;
		check(iocx__win_error_from_socket(e), wsa_table[i].code,
		      "from_socket", wsa_table[i].name);
	}
	for (i = 0; i < N(wsa_other); i++)
		check(iocx__win_error_from_socket(wsa_other[i].err),
		      wsa_other[i].code, "from_socket", wsa_other[i].name);
}

static const struct wsa_row gai_table[] = {
	WSA(0, "NO_ERROR", IOCX_OK),
	WSA(11001, "WSAHOST_NOT_FOUND", IOCX_E_NAME),
	WSA(11004, "WSANO_DATA", IOCX_E_NAME),
	WSA(10111, "WSA_E_CANCELLED", IOCX_E_CANCELLED),
	WSA(11002, "WSATRY_AGAIN", IOCX_E_RESOLVE),
	WSA(11003, "WSANO_RECOVERY", IOCX_E_RESOLVE),
	WSA(8, "WSA_NOT_ENOUGH_MEMORY", IOCX_E_RESOLVE),
};

static void from_gai_missing_name_is_name_others_resolve(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(gai_table); i++)
		check(iocx__win_error_from_gai(gai_table[i].err),
		      gai_table[i].code, "from_gai", gai_table[i].name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(from_ntstatus_success_maps_to_ok),
		cmocka_unit_test(from_ntstatus_table_rows_map),
		cmocka_unit_test(from_ntstatus_other_maps_to_system),
		cmocka_unit_test(from_wsa_table_rows_map),
		cmocka_unit_test(from_wsa_other_maps_to_system),
		cmocka_unit_test(
			from_bind_ephemeral_exhaustion_maps_to_ports_exhausted),
		cmocka_unit_test(from_bind_explicit_port_maps_like_wsa),
		cmocka_unit_test(
			from_connect_wildcard_addrinuse_nobufs_are_ports_exhausted),
		cmocka_unit_test(from_bind_ephemeral_other_errors_map_like_wsa),
		cmocka_unit_test(from_socket_out_of_handles_maps_to_nofile),
		cmocka_unit_test(from_socket_other_errors_map_like_wsa),
		cmocka_unit_test(
			from_gai_missing_name_is_name_others_resolve),
	};

	/* Pure functions on numbers: no fixture state to set up. */
	return cmocka_run_group_tests_name("win_error", tests, NULL, NULL);
}
