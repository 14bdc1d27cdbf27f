/*
 * JSON pull reader (see json_in.h).  Nesting is bounded (MAX_DEPTH) so
 * that a hostile file cannot exhaust the stack when skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "json_in.h"

#define MAX_DEPTH 64

static bool bad(struct json_in *j, const char *why)
{
	if (!j->why)
		j->why = why;
	return false;
}

static void ws(struct json_in *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* The next non-blank character is c: take it. */
static bool take(struct json_in *j, char c)
{
	ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

/* See json_in.h. */
void json_in_init(struct json_in *j, const char *text, size_t len)
{
	j->p = text;
	j->end = text + len;
	j->why = NULL;
}

/* The escape after a backslash (j->p at its letter) into *c. */
static bool unescape(struct json_in *j, char *c)
{
	static const char from[] = "ntrbf\"\\/", to[] = "\n\t\r\b\f\"\\/";
	const char *k = j->p < j->end ? strchr(from, *j->p) : NULL;
	char hex[5] = { 0 };
	char *e;
	long v;

	if (k && *k) {
		*c = to[k - from];
		j->p++;
		return true;
	}
	if (j->p == j->end || *j->p != 'u' || j->end - j->p < 5)
		return bad(j, "bad escape in a string");
	memcpy(hex, j->p + 1, 4);
	v = strtol(hex, &e, 16);
	if (*e || hex[0] == '-' || hex[0] == '+')
		return bad(j, "bad \\u escape");
	j->p += 5;
	*c = v < 0x80 ? (char)v : '?';
	return true;
}

/*
 * A string at j->p: its unescaped bytes into out (room for cap bytes
 * and the NUL; more are dropped) when out is not NULL.  Only \u escapes
 * below 0x80 are decoded; others become '?', which the bench never
 * writes in the fields merge reads.
 */
static bool string_into(struct json_in *j, char *out, size_t cap)
{
	size_t n = 0;

	if (!take(j, '"'))
		return bad(j, "want a string");
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;

		if ((unsigned char)c < 0x20)
			return bad(j, "control character in a string");
		if (c == '\\' && !unescape(j, &c))
			return false;
		if (out && n < cap)
			out[n++] = c;
	}
	if (j->p == j->end)
		return bad(j, "unterminated string");
	j->p++;
	if (out)
		out[n] = '\0';
	return true;
}

/* See json_in.h. */
char *json_in_string(struct json_in *j)
{
	const char *start;
	size_t cap;
	char *out;

	ws(j);
	start = j->p;
	if (!string_into(j, NULL, 0))
		return NULL;
	/* The unescaped text is never longer than the quoted one. */
	cap = (size_t)(j->p - start);
	out = malloc(cap + 1);
	if (!out) {
		bad(j, "out of memory");
		return NULL;
	}
	j->p = start;
	string_into(j, out, cap);
	return out;
}

/* See json_in.h. */
bool json_in_number(struct json_in *j, double *out)
{
	char buf[64];
	size_t n = 0;
	char *e;

	ws(j);
	while (j->p + n < j->end && n < sizeof(buf) - 1 &&
	       strchr("0123456789+-.eE", j->p[n]))
		n++;
	if (n == 0 || n == sizeof(buf) - 1)
		return bad(j, "want a number");
	memcpy(buf, j->p, n);
	buf[n] = '\0';
	*out = strtod(buf, &e);
	if (*e)
		return bad(j, "want a number");
	j->p += n;
	return true;
}

/* See json_in.h. */
bool json_in_object_next(struct json_in *j, bool *first, char *key,
			 size_t keylen)
{
	if (*first) {
		*first = false;
		if (!take(j, '{'))
			return bad(j, "want an object");
		if (take(j, '}'))
			return false;
	} else if (!take(j, ',')) {
		if (!take(j, '}'))
			return bad(j, "want , or } in an object");
		return false;
	}
	if (!string_into(j, key, keylen - 1))
		return false;
	if (!take(j, ':'))
		return bad(j, "want : after a key");
	return true;
}

/* See json_in.h. */
bool json_in_array_next(struct json_in *j, bool *first)
{
	if (*first) {
		*first = false;
		if (!take(j, '['))
			return bad(j, "want an array");
		return !take(j, ']');
	}
	if (take(j, ','))
		return true;
	if (!take(j, ']'))
		return bad(j, "want , or ] in an array");
	return false;
}

static bool word(struct json_in *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return bad(j, "want a value");
	j->p += n;
	return true;
}

static bool skip_depth(struct json_in *j, int depth)
{
	bool first = true;
	char key[8];
	double d;

	if (depth > MAX_DEPTH)
		return bad(j, "nested too deeply");
	ws(j);
	if (j->p == j->end)
		return bad(j, "want a value");
	switch (*j->p) {
	case '{':
		while (json_in_object_next(j, &first, key, sizeof(key))) {
			if (!skip_depth(j, depth + 1))
				return false;
		}
		return !j->why;
	case '[':
		while (json_in_array_next(j, &first)) {
			if (!skip_depth(j, depth + 1))
				return false;
		}
		return !j->why;
	case '"':
		return string_into(j, NULL, 0);
	case 't':
		return word(j, "true");
	case 'f':
		return word(j, "false");
	case 'n':
		return word(j, "null");
	default:
		return json_in_number(j, &d);
	}
}

/* See json_in.h. */
bool json_in_skip(struct json_in *j)
{
	return skip_depth(j, 0);
}

/* See json_in.h. */
bool json_in_end(struct json_in *j)
{
	ws(j);
	return j->p == j->end || bad(j, "text after the value");
}
