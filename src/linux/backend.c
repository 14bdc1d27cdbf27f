/*
 * iocx_engine_create() on Linux: choose the backend.  io_uring when the
 * machine runs it, else epoll; the option (or, when the option says
 * "auto", the IOCX_BACKEND environment variable) forces one.
 *
 * "Runs it" is decided by creating the rings: io_uring_setup fails with
 * ENOSYS without kernel support or under a seccomp filter, with EPERM when
 * kernel.io_uring_disabled forbids it, and a ring without the operations
 * and features the backend needs counts as missing too; all of these come
 * back from the io_uring backend as IOCX_E_NOTSUP.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "linux/lx.h"

/* See iocx.h. */
int iocx_engine_create(const struct iocx_engine_options *opts,
		       iocx_engine **out)
{
	struct iocx_engine_options o;
	const char *want;
	int rc;

	if (!out)
		return IOCX_E_INVAL;
	iocx_engine_options_init(&o);
	if (opts)
		o = *opts;
	want = o.backend ? o.backend : "auto";
	if (strcmp(want, "auto") == 0) {
		const char *env = getenv("IOCX_BACKEND");

		if (env && *env)
			want = env;
	}
	if (strcmp(want, iocx__epoll_backend.name) == 0) {
		o.backend = iocx__epoll_backend.name;
		return iocx__engine_create_with(&iocx__epoll_backend, &o, 0,
						out);
	}
	if (strcmp(want, iocx__uring_backend.name) == 0) {
		o.backend = iocx__uring_backend.name;
		return iocx__engine_create_with(&iocx__uring_backend, &o, 0,
						out);
	}
	if (strcmp(want, "auto") != 0)
		return IOCX_E_NOTSUP;

	o.backend = iocx__uring_backend.name;
	rc = iocx__engine_create_with(&iocx__uring_backend, &o, 0, out);
	if (rc != IOCX_E_NOTSUP)
		return rc;
	o.backend = iocx__epoll_backend.name;
	return iocx__engine_create_with(&iocx__epoll_backend, &o, 0, out);
}
