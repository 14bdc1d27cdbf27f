/*
 * The library's side of the ABI scheme (docs/abi.md): public structs that
 * grow end in a reserved tail, which callers must leave zero.
 */
#ifndef IOCX_ABI_H
#define IOCX_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether the n reserved words at w are all zero. */
bool iocx__reserved_zero(const uint64_t *w, size_t n);

/* The number of words of a reserved tail (an array member). */
#define IOCX__NWORDS(array) (sizeof(array) / sizeof((array)[0]))

#endif /* IOCX_ABI_H */
