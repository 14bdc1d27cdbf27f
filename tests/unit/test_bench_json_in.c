/*
 * Unit tests of the bench's JSON pull reader (bench/json_in.c), which
 * `iocx-bench merge` reads --json reports with: walking objects and
 * arrays, strings with escapes, numbers, skipping what is not wanted,
 * and refusing malformed text with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json_in.h"

static struct json_in j;

static void init(const char *text)
{
	json_in_init(&j, text, strlen(text));
}

static void json_in_object_next_walks_keys_and_values(void **state)
{
	bool first = true, f2 = true;
	char key[8], *s;
	double d = 0;

	(void)state;
	init(" {\"a\": 1.5e3, \"long_key_cut\": [1, [2, {\"x\": null}]],"
	     " \"s\": \"q\\\"\\\\\\/\\n\\u0041\", \"t\": true} ");
	assert_true(json_in_object_next(&j, &first, key, sizeof(key)));
	assert_string_equal(key, "a");
	assert_true(json_in_number(&j, &d));
	assert_true(d == 1500);
	assert_true(json_in_object_next(&j, &first, key, sizeof(key)));
	assert_string_equal(key, "long_ke");	/* cut to the buffer */
	assert_true(json_in_array_next(&j, &f2));
	assert_true(json_in_number(&j, &d));
	assert_true(d == 1);
	assert_true(json_in_array_next(&j, &f2));
	assert_true(json_in_skip(&j));
	assert_false(json_in_array_next(&j, &f2));
	assert_null(j.why);
	assert_true(json_in_object_next(&j, &first, key, sizeof(key)));
	s = json_in_string(&j);
	assert_non_null(s);
	assert_string_equal(s, "q\"\\/\nA");
	free(s);
	assert_true(json_in_object_next(&j, &first, key, sizeof(key)));
	assert_true(json_in_skip(&j));
	assert_false(json_in_object_next(&j, &first, key, sizeof(key)));
	assert_null(j.why);
	assert_true(json_in_end(&j));
}

static void json_in_array_next_takes_empty_containers(void **state)
{
	bool first = true;
	char key[8];

	(void)state;
	init("[]");
	assert_false(json_in_array_next(&j, &first));
	assert_null(j.why);
	first = true;
	init("{ }");
	assert_false(json_in_object_next(&j, &first, key, sizeof(key)));
	assert_null(j.why);
	assert_true(json_in_end(&j));
}

/* Each is refused by json_in_skip() or json_in_end(), with a reason. */
static const char *const malformed[] = {
	"", "{", "[1,", "[1 2]", "{\"a\" 1}", "{\"a\": }", "{1: 2}",
	"\"open", "\"bad \\q escape\"", "\"\\u12\"", "\"\\u-123\"",
	"\"tab\tinside\"", "tru", "nul", "-", "1e", "[1]]", "{} x",
};

static void json_in_skip_refuses_malformed_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++) {
		init(malformed[i]);
		if (json_in_skip(&j) && json_in_end(&j))
			fail_msg("accepted: %s", malformed[i]);
		assert_non_null(j.why);
	}
}

static void json_in_skip_bounds_nesting(void **state)
{
	char deep[200];

	(void)state;
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	init(deep);
	assert_false(json_in_skip(&j));
	assert_string_equal(j.why, "nested too deeply");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_in_object_next_walks_keys_and_values),
		cmocka_unit_test(json_in_array_next_takes_empty_containers),
		cmocka_unit_test(json_in_skip_refuses_malformed_text),
		cmocka_unit_test(json_in_skip_bounds_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
