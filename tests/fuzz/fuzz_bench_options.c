/*
 * libFuzzer target: the bench's command-line parser (bench/options.c).
 *
 * The input is split at NUL bytes into at most MAX_ARGS arguments after
 * "iocx-bench" (each in a block of its own exact size, so that ASan sees
 * a read past an argument's end); the first byte picks the size of the
 * error buffer.  bench_parse() must return one of its three results,
 * write no byte of err past errlen and terminate it, explain every
 * refusal, and accept only options within the documented ranges
 * (bench/options.h).  A broken promise aborts, which libFuzzer reports
 * with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32
#define ERR_SIZE 256

/* What an accepted command line must satisfy. */
static void check_accepted(const struct bench_options *o)
{
	CHECK(o->concurrency >= 1 && o->concurrency <= BENCH_MAX_CONCURRENCY);
	CHECK(o->workers <= BENCH_MAX_WORKERS);
	CHECK(o->batch >= 1 && o->batch <= 4096);
	CHECK(o->payload <= IOCX_MAX_PAYLOAD);
	CHECK(o->close_mode == BENCH_CLOSE_ABORT ||
	      o->close_mode == BENCH_CLOSE_GRACEFUL);
	CHECK(o->sink_mode == BENCH_SINK_READ ||
	      o->sink_mode == BENCH_SINK_CLOSE ||
	      o->sink_mode == BENCH_SINK_ECHO);
	CHECK(o->sink_threads <= BENCH_MAX_SINK_THREADS);
	CHECK(o->rounds >= 1 && o->rounds <= BENCH_MAX_ROUNDS);
	CHECK(o->armed <= BENCH_MAX_ARMED);
	CHECK(o->rate <= 100000000);
	/* A workload of connects or of time, never both, never neither. */
	CHECK((o->connects == 0) != (o->duration_ms == 0));
	CHECK(!o->warmup_connects || !o->connects ||
	      o->warmup_connects < o->connects);
	CHECK(!o->warmup_ms || !o->duration_ms ||
	      o->warmup_ms < o->duration_ms);
	CHECK(!o->warmup_connects || !o->warmup_ms);
	CHECK(!(o->json.on && o->csv.on && !o->json.path && !o->csv.path));
	/* A reply timeout exactly when a reply is read. */
	CHECK((o->reply_timeout_ms != 0) ==
	      (o->expect_bytes != 0 || o->expect_until_len != 0));
	/* --start-at: none, or a time in 2000..2099. */
	CHECK(o->start_at == 0 ||
	      (o->start_at >= 946684800.0 && o->start_at < 4102444800.0));
	CHECK(o->ntargets <= BENCH_MAX_TARGETS);
	/* --scale holds one engine's connections: no phases, one target. */
	CHECK(o->scale <= BENCH_MAX_SCALE);
	CHECK(o->scale || (!o->idle_ms && !o->sources));
	CHECK(!o->scale || (!o->baseline && !o->rate && o->ntargets <= 1));
	for (unsigned i = 0; i < o->ntargets; i++) {
		const struct bench_target *t = &o->targets[i];

		/* All names (resolved by the engine) or all numeric. */
		CHECK((t->len == 0) == o->by_name);
		if (o->by_name) {
			CHECK(t->host[0] != '\0' &&
			      strlen(t->host) <= IOCX_MAX_HOST);
			CHECK(t->port != 0 || o->ntargets == 1);
			continue;
		}
		CHECK(t->len == sizeof(struct sockaddr_in) ||
		      t->len == sizeof(struct sockaddr_in6));
		CHECK(t->addr.ss_family == AF_INET ||
		      t->addr.ss_family == AF_INET6);
	}
	/* Names: no raw baseline, --scale or --armed; a DNS server only
	 * for them. */
	CHECK(!o->by_name || (!o->baseline && !o->scale && !o->armed));
	CHECK(!o->resolver || o->by_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2] = { "iocx-bench" };
	char err[ERR_SIZE + 16];
	struct bench_options o;
	enum bench_parse_result r;
	size_t errlen, pos = 1;
	int argc = 1;

	if (size == 0)
		return 0;
	errlen = data[0] % (ERR_SIZE + 1);	/* 0 is allowed */
	while (pos < size && argc <= MAX_ARGS) {
		const uint8_t *nul = memchr(data + pos, 0, size - pos);
		size_t len = nul ? (size_t)(nul - (data + pos)) : size - pos;

		argv[argc] = malloc(len + 1);
		CHECK(argv[argc]);
		memcpy(argv[argc], data + pos, len);
		argv[argc][len] = '\0';
		argc++;
		pos += len + 1;
	}
	argv[argc] = NULL;

	memset(err, 0x7e, sizeof(err));
	r = bench_parse(argc, argv, &o, err, errlen);
	for (size_t i = errlen; i < sizeof(err); i++)
		CHECK(err[i] == 0x7e);
	if (errlen)
		CHECK(memchr(err, '\0', errlen) != NULL);
	switch (r) {
	case BENCH_PARSE_OK:
		if (errlen)
			CHECK(err[0] == '\0');
		check_accepted(&o);
		break;
	case BENCH_PARSE_HELP:
	case BENCH_PARSE_VERSION:
		break;
	case BENCH_PARSE_USAGE:
		if (errlen > 1)
			CHECK(err[0] != '\0');
		break;
	default:
		CHECK(!"unknown bench_parse result");
	}
	for (int i = 1; i < argc; i++)
		free(argv[i]);
	return 0;
}
