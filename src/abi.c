/*
 * Version and ABI: iocx_version(), and the sizes the public structs must
 * keep (docs/abi.md).  A field added to a struct takes its room from the
 * struct's reserved tail; if the tail was not shrunk to match, the struct
 * grew and the build fails here instead of breaking programs built
 * against the previous header.
 */
#include "iocx.h"
#include "abi.h"

/* The sizes are those of 64-bit targets (pointers, size_t of 8 bytes). */
#define KEEPS_SIZE(type, bytes)						\
	_Static_assert(sizeof(type) == (bytes), #type " must stay " #bytes \
		       " bytes: carve new fields from its reserved[]")
#if UINTPTR_MAX == UINT64_MAX
KEEPS_SIZE(struct iocx_engine_options, 256);
KEEPS_SIZE(struct iocx_connect_request, 256);
KEEPS_SIZE(struct iocx_connect_result, 128);
KEEPS_SIZE(struct iocx_stats, 1024);
KEEPS_SIZE(struct iocx_io_errors, 1536);
#endif
_Static_assert(IOCX_ERROR_COUNT <= IOCX_STATS_ERRORS,
	       "iocx_stats.errors has room for IOCX_STATS_ERRORS codes");
_Static_assert(IOCX_VERSION_MAJOR < 256 && IOCX_VERSION_MINOR < 256 &&
		       IOCX_VERSION_PATCH < 256,
	       "IOCX_VERSION_NUMBER has 8 bits per part");

/* See iocx.h. */
unsigned iocx_version(void)
{
	return IOCX_VERSION_NUMBER;
}

/* See iocx.h. */
const char *iocx_version_string(void)
{
	return IOCX_VERSION_STRING;
}

/* See abi.h. */
bool iocx__reserved_zero(const uint64_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w[i] != 0)
			return false;
	}
	return true;
}
