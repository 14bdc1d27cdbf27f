/*
 * CHECK(cond) for the libFuzzer targets: a broken promise prints where
 * and aborts, which libFuzzer reports with the input that did it.
 */
#ifndef IOCX_TESTS_FUZZ_CHECK_H
#define IOCX_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n",        \
				__FILE__, __LINE__, #cond);                 \
			abort();                                            \
		}                                                           \
	} while (0)

#endif /* IOCX_TESTS_FUZZ_CHECK_H */
