/*
 * The library allocator: malloc/free unless iocx_set_allocator() replaced
 * them.  Every allocation of the library goes through here.  The pair may
 * change only while no engine exists, so a block is always freed by the
 * function that matches the one that allocated it: engine creation pins
 * the allocator and destruction unpins it.
 */
#ifndef IOCX_ALLOC_H
#define IOCX_ALLOC_H

#include <stddef.h>

/* Allocate / free through the current allocator. */
void *iocx__alloc(size_t size);
void iocx__free(void *ptr);

/* One more / one less engine alive; iocx_set_allocator refuses while any. */
void iocx__alloc_pin(void);
void iocx__alloc_unpin(void);

#endif /* IOCX_ALLOC_H */
