/*
 * Which raw loop a Linux run compares the engine with: the one built on
 * the same kernel interface as the backend the engine picked.
 */
#include <string.h>

#include "drivers.h"

/* See drivers.h. */
const struct driver *raw_driver_for(const char *backend)
{
	if (backend && !strcmp(backend, "epoll"))
		return &raw_epoll_driver;
	return &raw_uring_driver;
}
