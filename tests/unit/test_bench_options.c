/*
 * Unit tests of iocx-bench's option parser (bench/options.c) and --target
 * address parsing (bench/addr.c): defaults, every option in both forms,
 * and every bad input rejected as a usage error (exit status 2) with one
 * line of explanation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"

#define MAX_ARGS (2 * BENCH_MAX_TARGETS + 8)

struct opts_case {
	const char *args[6];	/* NULL-terminated, without argv[0] */
};

static struct bench_options o;
static char err[256];

static enum bench_parse_result parse(const char *const *args)
{
	char *argv[MAX_ARGS + 2] = { "iocx-bench" };
	int argc = 1;

	for (; args[argc - 1]; argc++) {
		assert_true(argc <= MAX_ARGS);
		argv[argc] = (char *)args[argc - 1];
	}
	return bench_parse(argc, argv, &o, err, sizeof(err));
}

#define PARSE(...) parse((const char *const[]){ __VA_ARGS__, NULL })

static int setup(void **state)
{
	(void)state;
#ifdef _WIN32
	WSADATA wsa;

	/* inet_pton is a Winsock function. */
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		return -1;
#endif
	return 0;
}

static int teardown(void **state)
{
	(void)state;
#ifdef _WIN32
	WSACleanup();
#endif
	return 0;
}

static void bench_parse_no_arguments_gives_defaults(void **state)
{
	char *argv[] = { "iocx-bench", NULL };

	(void)state;
	assert_int_equal(bench_parse(1, argv, &o, err, sizeof(err)),
			 BENCH_PARSE_OK);
	assert_int_equal(o.connects, BENCH_DEFAULT_CONNECTS);
	assert_int_equal(o.duration_ms, 0);
	assert_int_equal(o.concurrency, BENCH_DEFAULT_CONCURRENCY);
	assert_int_equal(o.workers, 0);
	assert_int_equal(o.batch, BENCH_DEFAULT_BATCH);
	assert_int_equal(o.payload, BENCH_DEFAULT_PAYLOAD);
	assert_false(o.fastopen);
	assert_false(o.batch_closes);
	assert_int_equal(o.close_mode, BENCH_CLOSE_ABORT);
	assert_int_equal(o.rate, 0);
	assert_int_equal(o.burst, 1);
	assert_int_equal(o.warmup_connects, 0);
	assert_int_equal(o.warmup_ms, 0);
	assert_int_equal(o.timeout_ms, 0);
	assert_int_equal(o.ntargets, 0);
	assert_int_equal(o.sink_mode, BENCH_SINK_READ);
	assert_int_equal(o.sink_threads, 0);
	assert_false(o.baseline);
	assert_int_equal(o.rounds, 1);
	assert_int_equal(o.armed, 0);
	assert_false(o.json.on);
	assert_false(o.csv.on);
}

static void bench_parse_every_option_is_applied(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "500", "--concurrency", "128",
			       "--workers", "4", "--batch", "16",
			       "--payload", "4096", "--fastopen",
			       "--batch-closes", "--close",
			       "graceful", "--rate", "2500", "--burst", "8",
			       "--warmup", "50",
			       "--timeout", "1.5", "--sink", "close",
			       "--sink-threads", "3"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.connects, 500);
	assert_int_equal(o.concurrency, 128);
	assert_int_equal(o.workers, 4);
	assert_int_equal(o.batch, 16);
	assert_int_equal(o.payload, 4096);
	assert_true(o.fastopen);
	assert_true(o.batch_closes);
	assert_int_equal(o.close_mode, BENCH_CLOSE_GRACEFUL);
	assert_int_equal(o.rate, 2500);
	assert_int_equal(o.burst, 8);
	assert_int_equal(o.warmup_connects, 50);
	assert_int_equal(o.timeout_ms, 1500);
	assert_int_equal(o.sink_mode, BENCH_SINK_CLOSE);
	assert_int_equal(o.sink_threads, 3);
}

static void bench_parse_equals_form_is_the_same(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects=777", "--close=abort",
			       "--payload=0", "--json=out.json",
			       "--csv=rows.csv"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.connects, 777);
	assert_int_equal(o.payload, 0);
	assert_true(o.json.on);
	assert_string_equal(o.json.path, "out.json");
	assert_true(o.csv.on);
	assert_string_equal(o.csv.path, "rows.csv");
}

static void bench_parse_json_without_path_is_stdout(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--json"), BENCH_PARSE_OK);
	assert_true(o.json.on);
	assert_null(o.json.path);
	assert_int_equal(PARSE("--csv=-", "--json=r.json"), BENCH_PARSE_OK);
	assert_null(o.csv.path);
}

static void bench_parse_durations_accept_units(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--duration", "2.5"), BENCH_PARSE_OK);
	assert_int_equal(o.duration_ms, 2500);
	assert_int_equal(o.connects, 0);
	assert_int_equal(PARSE("--duration", "250ms", "--warmup", "100ms"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.duration_ms, 250);
	assert_int_equal(o.warmup_ms, 100);
	assert_int_equal(PARSE("--duration", "3s", "--warmup", "1s",
			       "--timeout", "200ms"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.duration_ms, 3000);
	assert_int_equal(o.warmup_ms, 1000);
	assert_int_equal(o.warmup_connects, 0);
	assert_int_equal(o.timeout_ms, 200);
}

static void bench_parse_targets_ipv4_and_ipv6(void **state)
{
	const struct sockaddr_in *in = (const void *)&o.targets[0].addr;
	const struct sockaddr_in6 *in6 = (const void *)&o.targets[0].addr;
	char text[BENCH_ADDR_TEXT];

	(void)state;
	assert_int_equal(PARSE("--target", "127.0.0.1:8080"), BENCH_PARSE_OK);
	assert_int_equal(o.ntargets, 1);
	assert_int_equal(o.targets[0].len, sizeof(struct sockaddr_in));
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 8080);
	assert_string_equal(bench_addr_format((const void *)in, text),
			    "127.0.0.1:8080");

	assert_int_equal(PARSE("--target=[::1]:443"), BENCH_PARSE_OK);
	assert_int_equal(o.targets[0].len, sizeof(struct sockaddr_in6));
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 443);
	assert_string_equal(bench_addr_format((const void *)in6, text),
			    "[::1]:443");
}

static void bench_parse_targets_repeat_in_order(void **state)
{
	const char *want[] = { "127.0.0.1:81", "127.0.0.2:82",
			       "127.0.0.3:83" };
	char text[BENCH_ADDR_TEXT];

	(void)state;
	assert_int_equal(PARSE("--target", want[0], "--target=127.0.0.2:82",
			       "--target", want[2]),
			 BENCH_PARSE_OK);
	assert_int_equal(o.ntargets, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_string_equal(
			bench_addr_format((const void *)&o.targets[i].addr,
					  text),
			want[i]);
}

static void bench_parse_targets_at_most_max(void **state)
{
	const char *args[2 * BENCH_MAX_TARGETS + 3];
	unsigned n = 0;

	(void)state;
	for (unsigned i = 0; i <= BENCH_MAX_TARGETS; i++) {
		args[n++] = "--target";
		args[n++] = "127.0.0.1:80";
	}
	args[n] = NULL;
	assert_int_equal(parse(args), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "at most"));
	args[n - 2] = NULL;
	assert_int_equal(parse(args), BENCH_PARSE_OK);
	assert_int_equal(o.ntargets, BENCH_MAX_TARGETS);
}

static void bench_parse_targets_by_name(void **state)
{
	char longest[IOCX_MAX_HOST + 8];

	(void)state;
	assert_int_equal(PARSE("--target", "Example-1.test:443", "--target",
			       "localhost.:80", "--resolver", "[::1]:5353"),
			 BENCH_PARSE_OK);
	assert_true(o.by_name);
	assert_false(o.name_sink);
	assert_int_equal(o.ntargets, 2);
	assert_int_equal(o.targets[0].len, 0);
	assert_string_equal(o.targets[0].host, "Example-1.test");
	assert_int_equal(o.targets[0].port, 443);
	assert_string_equal(o.targets[1].host, "localhost.");
	assert_int_equal(o.targets[1].port, 80);
	assert_string_equal(o.resolver, "[::1]:5353");

	/* NAME:0 is the built-in sink's port; --sink applies then. */
	assert_int_equal(PARSE("--target", "sink.test:0", "--sink", "close"),
			 BENCH_PARSE_OK);
	assert_true(o.name_sink);
	assert_int_equal(o.targets[0].port, 0);
	assert_int_equal(o.sink_mode, BENCH_SINK_CLOSE);

	/* IOCX_MAX_HOST bytes: 4 labels of 63 and one of 1. */
	memset(longest, 'a', IOCX_MAX_HOST);
	for (unsigned i = 63; i < IOCX_MAX_HOST; i += 64)
		longest[i] = '.';
	strcpy(longest + IOCX_MAX_HOST, ":80");
	assert_int_equal(PARSE("--target", longest), BENCH_PARSE_OK);
	assert_int_equal(strlen(o.targets[0].host), IOCX_MAX_HOST);
	longest[IOCX_MAX_HOST] = 'a';
	strcpy(longest + IOCX_MAX_HOST + 1, ":80");
	assert_int_equal(PARSE("--target", longest), BENCH_PARSE_USAGE);

	/* Numeric targets stay numeric. */
	assert_int_equal(PARSE("--target", "127.0.0.1:80"), BENCH_PARSE_OK);
	assert_false(o.by_name);
	assert_int_equal(o.targets[0].len, sizeof(struct sockaddr_in));
	assert_string_equal(o.targets[0].host, "");
}

static void bench_parse_request_and_reply_options(void **state)
{
	unsigned char bytes[8];

	(void)state;
	assert_int_equal(PARSE("--connects", "5"), BENCH_PARSE_OK);
	assert_false(bench_expects_reply(&o));
	assert_int_equal(PARSE("--payload-hex", "50494E470d0a",
			       "--expect-until", "+PONG\\r\\n", "--sink",
			       "echo"),
			 BENCH_PARSE_OK);
	assert_string_equal(o.payload_hex, "50494E470d0a");
	assert_int_equal(o.payload, 6);
	assert_int_equal(bench_hex_decode(o.payload_hex, bytes), 6);
	assert_memory_equal(bytes, "PING\r\n", 6);
	assert_int_equal(o.expect_until_len, 7);
	assert_memory_equal(o.expect_until, "+PONG\r\n", 7);
	assert_int_equal(o.sink_mode, BENCH_SINK_ECHO);
	assert_true(bench_expects_reply(&o));

	assert_int_equal(PARSE("--expect-until", "a\\x00b\\t\\\\"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.expect_until_len, 5);
	assert_memory_equal(o.expect_until, "a\0b\t\\", 5);

	assert_int_equal(PARSE("--payload-file", "req.txt", "--expect-bytes",
			       "2k"),
			 BENCH_PARSE_OK);
	assert_string_equal(o.payload_file, "req.txt");
	assert_null(o.payload_hex);
	assert_int_equal(o.expect_bytes, 2000);
	assert_true(bench_expects_reply(&o));
}

static void bench_parse_reply_timeout_bounds_replies_only(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5"), BENCH_PARSE_OK);
	assert_int_equal(o.reply_timeout_ms, 0);
	assert_int_equal(PARSE("--expect-bytes", "5"), BENCH_PARSE_OK);
	assert_int_equal(o.reply_timeout_ms, BENCH_DEFAULT_REPLY_TIMEOUT_MS);
	assert_int_equal(PARSE("--reply-timeout", "300ms", "--expect-until",
			       "x"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.reply_timeout_ms, 300);
	assert_int_equal(PARSE("--expect-bytes", "5", "--reply-timeout=2.5"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.reply_timeout_ms, 2500);
	assert_int_equal(PARSE("--reply-timeout", "1s"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "--expect-bytes"));
}

static void bench_parse_numbers_take_decimal_suffixes(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5k", "--concurrency", "1K",
			       "--rate", "2M", "--payload", "4k"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.connects, 5000);
	assert_int_equal(o.concurrency, 1000);
	assert_int_equal(o.rate, 2000000);
	assert_int_equal(o.payload, 4000);
	assert_int_equal(PARSE("--connects=1G", "--warmup", "10k"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.connects, 1000000000);
	assert_int_equal(o.warmup_connects, 10000);
	assert_int_equal(PARSE("--armed", "1M"), BENCH_PARSE_OK);
	assert_int_equal(o.armed, 1000000);
}

static void bench_parse_baseline_defaults_to_two_rounds(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--baseline"), BENCH_PARSE_OK);
	assert_true(o.baseline);
	assert_int_equal(o.rounds, 2);
	assert_int_equal(PARSE("--baseline", "--rounds", "1"), BENCH_PARSE_OK);
	assert_int_equal(o.rounds, 1);
	assert_int_equal(PARSE("--rounds", "5", "--baseline"), BENCH_PARSE_OK);
	assert_int_equal(o.rounds, 5);
}

static void bench_parse_last_value_wins(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--payload", "10", "--payload", "20"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.payload, 20);
}

static void bench_parse_payload_at_limit_is_accepted(void **state)
{
	char max[32];

	(void)state;
	snprintf(max, sizeof(max), "%u", IOCX_MAX_PAYLOAD);
	assert_int_equal(PARSE("--payload", max), BENCH_PARSE_OK);
	assert_int_equal(o.payload, IOCX_MAX_PAYLOAD);
}

static void bench_parse_armed_takes_0_to_max(void **state)
{
	char max[32];

	(void)state;
	assert_int_equal(PARSE("--armed", "0"), BENCH_PARSE_OK);
	assert_int_equal(o.armed, 0);
	assert_int_equal(PARSE("--armed", "100000", "--baseline"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.armed, 100000);
	assert_int_equal(PARSE("--armed=2000", "--target", "[::1]:80"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.armed, 2000);
	snprintf(max, sizeof(max), "%u", BENCH_MAX_ARMED);
	assert_int_equal(PARSE("--armed", max), BENCH_PARSE_OK);
	assert_int_equal(o.armed, 1000000);
}

static void bench_parse_scale_takes_idle_and_sources(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--scale", "100000"), BENCH_PARSE_OK);
	assert_int_equal(o.scale, 100000);
	assert_int_equal(o.idle_ms, 0);
	assert_int_equal(o.sources, 0);
	assert_int_equal(PARSE("--scale=1500", "--idle", "3600", "--sources",
			       "64", "--concurrency", "256", "--json"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.scale, 1500);
	assert_int_equal(o.idle_ms, 3600000);
	assert_int_equal(o.sources, IOCX_MAX_SOURCES);
	assert_int_equal(o.concurrency, 256);
	assert_int_equal(PARSE("--scale", "1000000", "--idle", "250ms",
			       "--sink-threads", "4"),
			 BENCH_PARSE_OK);
	assert_int_equal(o.scale, BENCH_MAX_SCALE);
	assert_int_equal(o.idle_ms, 250);
}

static void bench_parse_help_asks_for_usage(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5", "--help"), BENCH_PARSE_HELP);
	assert_int_equal(PARSE("-h"), BENCH_PARSE_HELP);
	assert_int_equal(PARSE("--version", "--connects", "5"),
			 BENCH_PARSE_VERSION);
}

static void bench_parse_quiet_is_a_switch(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5"), BENCH_PARSE_OK);
	assert_false(o.quiet);
	assert_int_equal(PARSE("--quiet"), BENCH_PARSE_OK);
	assert_true(o.quiet);
	assert_int_equal(PARSE("--quiet=1"), BENCH_PARSE_USAGE);
}

/* --start-at values and the instants they name. */
static const struct {
	const char *text;
	double epoch_s;
} start_times[] = {
	{ "2026-12-06T11:00:00Z", 1796554800.0 },
	{ "1796554800", 1796554800.0 },
	{ "1796554800.25", 1796554800.25 },
	{ "2026-12-06t11:00:00.5z", 1796554800.5 },
	/* An offset names the same instant in another zone. */
	{ "2026-12-06T12:30:00+01:30", 1796554800.0 },
	{ "2026-12-06T09:00:00-02:00", 1796554800.0 },
	/* A leap day, and the ends of the range. */
	{ "2028-02-29T00:00:00Z", 1835395200.0 },
	{ "2000-01-01T00:00:00Z", 946684800.0 },
	{ "2099-12-31T23:59:59Z", 4102444799.0 },
};

static void bench_parse_start_at_takes_rfc3339_and_unix_seconds(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5"), BENCH_PARSE_OK);
	assert_true(o.start_at == 0);
	for (size_t i = 0; i < sizeof(start_times) / sizeof(*start_times);
	     i++) {
		assert_int_equal(PARSE("--start-at", start_times[i].text),
				 BENCH_PARSE_OK);
		if (o.start_at != start_times[i].epoch_s)
			fail_msg("--start-at %s: %.3f, want %.3f",
				 start_times[i].text, o.start_at,
				 start_times[i].epoch_s);
	}
	assert_int_equal(PARSE("--start-at=1796554800"), BENCH_PARSE_OK);
	assert_true(o.start_at == 1796554800.0);
}

/* Every one of these must be a usage error, explained in one line. */
static const struct opts_case bad_inputs[] = {
	{ { "--bogus" } },
	{ { "--bogus=1" } },
	{ { "connects" } },
	{ { "-c", "5" } },
	{ { "-help" } },
	{ { "--version=1" } },
	{ { "--" } },
	{ { "--connects" } },
	{ { "--connects", "0" } },
	{ { "--connects", "-5" } },
	{ { "--connects", "+5" } },
	{ { "--connects", "12abc" } },
	{ { "--connects", "" } },
	{ { "--connects", "99999999999999999999999" } },
	{ { "--connects", "--payload" } },
	{ { "--concurrency", "0" } },
	{ { "--concurrency", "65537" } },
	{ { "--workers", "257" } },
	{ { "--batch", "0" } },
	{ { "--batch", "4097" } },
	{ { "--payload", "16777217" } },
	{ { "--payload", "18446744073709551616" } },
	{ { "--payload", "-1" } },
	{ { "--close", "rst" } },
	{ { "--close", "" } },
	{ { "--rate", "0" } },
	{ { "--rate", "1.5" } },
	{ { "--rate", "5", "--burst", "0" } },
	{ { "--rate", "5", "--burst", "1000001" } },
	{ { "--burst", "1" } },
	{ { "--scale", "10", "--burst", "2" } },
	{ { "--duration", "0" } },
	{ { "--duration", "abc" } },
	{ { "--duration", "5m" } },
	{ { "--duration", "0x10" } },
	{ { "--duration", "1e3" } },
	{ { "--duration", "-1" } },
	{ { "--duration", "." } },
	{ { "--warmup", "2x" } },
	{ { "--warmup", "-1" } },
	{ { "--timeout", "0" } },
	{ { "--timeout", "0.0001" } },
	{ { "--timeout", "nan" } },
	{ { "--armed" } },
	{ { "--armed", "1000001" } },
	{ { "--armed", "4294967296" } },
	{ { "--armed", "-1" } },
	{ { "--armed", "1e5" } },
	{ { "--armed", "many" } },
	{ { "--armed=" } },
	{ { "--rounds", "0" } },
	{ { "--rounds", "101" } },
	{ { "--sink", "discard" } },
	{ { "--sink-threads", "0" } },
	{ { "--sink-threads", "17" } },
	{ { "--fastopen=1" } },
	{ { "--batch-closes=on" } },
	{ { "--baseline=yes" } },
	{ { "--json=" } },
	{ { "--target", "127.0.0.1" } },
	{ { "--target", "127.0.0.1:" } },
	{ { "--target", "127.0.0.1:0" } },
	{ { "--target", "127.0.0.1:65536" } },
	{ { "--target", "127.0.0.1:80x" } },
	{ { "--target", "127.0.0.1:-80" } },
	{ { "--target", "127.0.0.1:+80" } },
	{ { "--target", "127.1:80" } },
	{ { "--target", "256.0.0.1:80" } },
	{ { "--target", "-host:80" } },
	{ { "--target", "host-:80" } },
	{ { "--target", "a..b:80" } },
	{ { "--target", ".host:80" } },
	{ { "--target", "ho_st:80" } },
	{ { "--target", "host:" } },
	{ { "--target", "host:65536" } },
	{ { "--target", "host.1:80" } },
	{ { "--target", "localhost:80", "--target", "127.0.0.1:80" } },
	{ { "--target", "127.0.0.1:80", "--target", "localhost:80" } },
	{ { "--target", "localhost:0", "--target", "localhost:80" } },
	{ { "--target", "localhost:80", "--baseline" } },
	{ { "--target", "localhost:80", "--scale", "10" } },
	{ { "--target", "localhost:80", "--armed", "10" } },
	{ { "--target", "localhost:80", "--sink", "close" } },
	{ { "--resolver", "127.0.0.1:53" } },
	{ { "--target", "localhost:80", "--resolver", "127.0.0.1" } },
	{ { "--target", "localhost:80", "--resolver", "dns.test:53" } },
	{ { "--target", "localhost:80", "--resolver", "0.0.0.0:53" } },
	{ { "--target", ":80" } },
	{ { "--target", "::1:80" } },
	{ { "--target", "[::1]80" } },
	{ { "--target", "[::1]:" } },
	{ { "--target", "[::1:80" } },
	{ { "--target", "[]:80" } },
	{ { "--target", "[127.0.0.1]:80" } },
	{ { "--target", "[::g]:80" } },
	{ { "--target", "0.0.0.0:80" } },
	{ { "--target", "[::]:80" } },
	{ { "--target", "127.0.0.1:80", "--target", "[::1]:80" } },
	{ { "--connects", "5m" } },
	{ { "--payload-hex", "" } },
	{ { "--payload-hex", "4" } },
	{ { "--payload-hex", "4g" } },
	{ { "--payload-hex", "0x41" } },
	{ { "--payload-file=" } },
	{ { "--payload", "4", "--payload-file", "f" } },
	{ { "--expect-bytes", "0" } },
	{ { "--expect-bytes", "5", "--expect-until", "x" } },
	{ { "--expect-bytes", "5", "--baseline" } },
	{ { "--expect-until", "" } },
	{ { "--expect-until", "\\" } },
	{ { "--expect-until", "\\x4" } },
	{ { "--expect-until", "\\q" } },
	{ { "--sink", "reply" } },
	{ { "--connects", "5kk" } },
	{ { "--connects", "k" } },
	{ { "--connects", "1.5k" } },
	{ { "--connects", "5T" } },
	{ { "--connects", "5G" } },
	{ { "--concurrency", "66k" } },
	{ { "--payload", "20000000000G" } },
	{ { "--connects", "10", "--duration", "1" } },
	{ { "--connects", "10", "--warmup", "10" } },
	{ { "--duration", "1", "--warmup", "1s" } },
	{ { "--target", "127.0.0.1:80", "--sink", "close" } },
	{ { "--target", "127.0.0.1:80", "--sink-threads", "2" } },
	{ { "--json", "--csv" } },
	{ { "--scale", "0" } },
	{ { "--scale", "1000001" } },
	{ { "--scale", "10", "--baseline" } },
	{ { "--scale", "10", "--connects", "5" } },
	{ { "--scale", "10", "--duration", "1" } },
	{ { "--scale", "10", "--rate", "5" } },
	{ { "--scale", "10", "--rounds", "2" } },
	{ { "--scale", "10", "--armed", "5" } },
	{ { "--scale", "10", "--warmup", "5" } },
	{ { "--scale", "10", "--csv" } },
	{ { "--scale", "10", "--sink", "close" } },
	{ { "--scale", "10", "--idle", "0" } },
	{ { "--scale", "10", "--sources", "0" } },
	{ { "--scale", "10", "--sources", "65" } },
	{ { "--idle", "5" } },
	{ { "--sources", "2" } },
	{ { "--reply-timeout", "5" } },
	{ { "--expect-bytes", "5", "--reply-timeout", "0" } },
	{ { "--expect-bytes", "5", "--reply-timeout", "later" } },
	{ { "--expect-bytes", "5", "--reply-timeout", "8d" } },
	{ { "--start-at" } },
	{ { "--start-at", "" } },
	{ { "--start-at", "now" } },
	{ { "--start-at", "30" } },
	{ { "--start-at", "-1796554800" } },
	{ { "--start-at", "1796554800." } },
	{ { "--start-at", "1796554800s" } },
	{ { "--start-at", "17965548000" } },
	{ { "--start-at", "2026-12-06" } },
	{ { "--start-at", "2026-12-06T11:00:00" } },
	{ { "--start-at", "2026-12-06 11:00:00Z" } },
	{ { "--start-at", "2026-13-06T11:00:00Z" } },
	{ { "--start-at", "2026-02-29T11:00:00Z" } },
	{ { "--start-at", "2100-02-29T00:00:00Z" } },
	{ { "--start-at", "2026-04-31T11:00:00Z" } },
	{ { "--start-at", "2026-12-06T24:00:00Z" } },
	{ { "--start-at", "2026-12-06T11:60:00Z" } },
	{ { "--start-at", "2026-12-06T11:00:60Z" } },
	{ { "--start-at", "2026-12-06T11:00:00+0100" } },
	{ { "--start-at", "2026-12-06T11:00:00.Z" } },
	{ { "--start-at", "2026-12-06T11:00:00Zjunk" } },
	{ { "--start-at", "1999-12-31T23:59:59Z" } },
	{ { "--start-at", "2100-01-01T00:00:00Z" } },
};

/* The first Ctrl-C's wait for connects in flight: 1 s unless given. */
static void bench_parse_interrupt_grace_takes_a_duration(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--connects", "5"), BENCH_PARSE_OK);
	assert_int_equal(o.grace_ms, BENCH_DEFAULT_GRACE_MS);
	assert_int_equal(PARSE("--interrupt-grace", "60"), BENCH_PARSE_OK);
	assert_int_equal(o.grace_ms, 60000);
	assert_int_equal(PARSE("--interrupt-grace=250ms"), BENCH_PARSE_OK);
	assert_int_equal(o.grace_ms, 250);
	assert_int_equal(PARSE("--interrupt-grace", "0"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "--interrupt-grace 0"));
	assert_int_equal(PARSE("--interrupt-grace", "soon"),
			 BENCH_PARSE_USAGE);
}

static void bench_parse_bad_input_is_usage_error(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(*bad_inputs); i++) {
		enum bench_parse_result r = parse(bad_inputs[i].args);

		if (r != BENCH_PARSE_USAGE)
			fail_msg("accepted: %s %s %s", bad_inputs[i].args[0],
				 bad_inputs[i].args[1] ? bad_inputs[i].args[1]
						       : "",
				 bad_inputs[i].args[1] &&
						 bad_inputs[i].args[2]
					 ? bad_inputs[i].args[2]
					 : "");
		assert_true(strlen(err) > 10);
		assert_null(strchr(err, '\n'));
	}
}

static void bench_parse_usage_error_names_the_argument(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--concurrency", "0"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "--concurrency 0"));
	assert_int_equal(PARSE("--frobnicate"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "--frobnicate"));
	assert_int_equal(PARSE("--payload", "99999999"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "IOCX_MAX_PAYLOAD"));
	assert_int_equal(PARSE("--target", "no_host:1"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "no_host:1"));
	assert_int_equal(PARSE("--armed", "1000001"), BENCH_PARSE_USAGE);
	assert_non_null(strstr(err, "--armed 1000001"));
	assert_non_null(strstr(err, "1000000"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bench_parse_no_arguments_gives_defaults),
		cmocka_unit_test(bench_parse_every_option_is_applied),
		cmocka_unit_test(bench_parse_equals_form_is_the_same),
		cmocka_unit_test(bench_parse_json_without_path_is_stdout),
		cmocka_unit_test(bench_parse_durations_accept_units),
		cmocka_unit_test(bench_parse_targets_ipv4_and_ipv6),
		cmocka_unit_test(bench_parse_targets_repeat_in_order),
		cmocka_unit_test(bench_parse_targets_at_most_max),
		cmocka_unit_test(bench_parse_targets_by_name),
		cmocka_unit_test(bench_parse_numbers_take_decimal_suffixes),
		cmocka_unit_test(bench_parse_request_and_reply_options),
		cmocka_unit_test(bench_parse_reply_timeout_bounds_replies_only),
		cmocka_unit_test(bench_parse_baseline_defaults_to_two_rounds),
		cmocka_unit_test(bench_parse_last_value_wins),
		cmocka_unit_test(bench_parse_payload_at_limit_is_accepted),
		cmocka_unit_test(bench_parse_armed_takes_0_to_max),
		cmocka_unit_test(bench_parse_scale_takes_idle_and_sources),
		cmocka_unit_test(bench_parse_help_asks_for_usage),
		cmocka_unit_test(bench_parse_quiet_is_a_switch),
		cmocka_unit_test(bench_parse_start_at_takes_rfc3339_and_unix_seconds),
		cmocka_unit_test(bench_parse_interrupt_grace_takes_a_duration),
		cmocka_unit_test(bench_parse_bad_input_is_usage_error),
		cmocka_unit_test(bench_parse_usage_error_names_the_argument),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
