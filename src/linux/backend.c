/*
 * iocx_engine_create() on Linux: choose the backend.  The option (or,
 * when the option says "auto", the IOCX_BACKEND environment variable)
 * names one; so far there is only epoll.
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
	if (strcmp(want, "auto") != 0)
		return IOCX_E_NOTSUP;

	o.backend = iocx__epoll_backend.name;
	return iocx__engine_create_with(&iocx__epoll_backend, &o, 0, out);
}
