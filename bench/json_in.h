/*
 * A small pull reader of JSON text, enough for `iocx-bench merge` to read
 * the bench's own reports: objects are walked key by key, arrays element
 * by element, and whatever is not wanted is skipped (validated on the
 * way).  Portable; no allocation except json_in_string().
 */
#ifndef IOCX_BENCH_JSON_IN_H
#define IOCX_BENCH_JSON_IN_H

#include <stdbool.h>
#include <stddef.h>

struct json_in {
	const char *p, *end;		/* the text still to read */
	const char *why;		/* the first error, or NULL */
};

/* Read text[0..len). */
void json_in_init(struct json_in *j, const char *text, size_t len);

/*
 * Objects: call json_in_object_next() with *first true to enter one and
 * get its first key, then again for each next key (the value between is
 * read or skipped by the caller).  True with the key in key (truncated
 * to keylen - 1 bytes) while there is one; false at the closing brace or
 * on error (then j->why is set).
 */
bool json_in_object_next(struct json_in *j, bool *first, char *key,
			 size_t keylen);

/* Arrays alike: true while there is a next element to read. */
bool json_in_array_next(struct json_in *j, bool *first);

/* A string value, unescaped into a malloc'd buffer; NULL on error. */
char *json_in_string(struct json_in *j);

/* A number value; false on error. */
bool json_in_number(struct json_in *j, double *out);

/* Skip any one value; false on error. */
bool json_in_skip(struct json_in *j);

/* Only white space is left (true), else j->why is set. */
bool json_in_end(struct json_in *j);

#endif /* IOCX_BENCH_JSON_IN_H */
