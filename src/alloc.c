/*
 * The library allocator and iocx_set_allocator() (see alloc.h).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "iocx.h"
#include "alloc.h"

static void *(*alloc_fn)(size_t) = malloc;
static void (*free_fn)(void *) = free;
static atomic_int engines_alive;

/* See alloc.h. */
void *iocx__alloc(size_t size)
{
	return alloc_fn(size);
}

/* See alloc.h. */
void iocx__free(void *ptr)
{
	free_fn(ptr);
}

/* See alloc.h. */
void iocx__alloc_pin(void)
{
	atomic_fetch_add(&engines_alive, 1);
}

/* See alloc.h. */
void iocx__alloc_unpin(void)
{
	atomic_fetch_sub(&engines_alive, 1);
}

/* See iocx.h. */
int iocx_set_allocator(void *(*a)(size_t), void (*f)(void *))
{
	if (!a || !f)
		return IOCX_E_INVAL;
	if (atomic_load(&engines_alive) > 0)
		return IOCX_E_ALREADY;
	alloc_fn = a;
	free_fn = f;
	return IOCX_OK;
}
