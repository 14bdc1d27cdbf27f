/*
 * iocx-bench command line: the workload, the target and the outputs.
 * Portable and free of side effects (no exit, no I/O except usage()), so
 * every accepted and rejected input is unit-tested natively and under
 * Wine (tests/unit/test_bench_options.c).
 */
#ifndef IOCX_BENCH_OPTIONS_H
#define IOCX_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

enum bench_close {
	BENCH_CLOSE_ABORT,		/* RST right after the connect */
	BENCH_CLOSE_GRACEFUL,		/* FIN */
};

enum bench_sink_mode {
	BENCH_SINK_READ,		/* accept, read the payload, close */
	BENCH_SINK_CLOSE,		/* accept, close */
	BENCH_SINK_ECHO,		/* accept, read the payload and send
					 * it back, close */
	/* accept, read the payload, keep it open until the sink stops
	 * (--scale sets it) */
	BENCH_SINK_HOLD,
};

/* Longest --expect-until string, once its escapes are decoded. */
#define BENCH_MAX_EXPECT 256

/* Most --target options one run takes. */
#define BENCH_MAX_TARGETS 16

/* One --target: a numeric address (len > 0), or a host name the
 * engine resolves (len 0, host and port set). */
struct bench_target {
	struct sockaddr_storage addr;
	size_t len;
	char host[IOCX_MAX_HOST + 1];	/* "" for a numeric target */
	unsigned short port;
};

/* Where a machine-readable output goes: nowhere, stdout, or a file. */
struct bench_output {
	bool on;
	const char *path;		/* NULL = stdout */
};

struct bench_options {
	/* Workload, per phase: connects, or a duration when duration_ms > 0. */
	uint64_t connects;
	uint64_t duration_ms;
	unsigned concurrency;		/* connects in flight, >= 1 */
	unsigned workers;		/* 0 = one per CPU */
	unsigned batch;		/* completions per dequeue, 1..4096 */
	size_t payload;		/* first-payload bytes per connect */
	bool fastopen;
	bool batch_closes;	/* iocx phases: options.batch_closes */
	enum bench_close close_mode;
	uint64_t rate;		/* starts per second, 0 = unpaced */
	/* iocx phases with --rate: the engine's connect_burst (1..). */
	unsigned burst;
	uint64_t warmup_connects;	/* outcomes excluded from the stats */
	uint64_t warmup_ms;		/* ... or time excluded */
	uint64_t timeout_ms;		/* connect deadline, 0 = none */
	/* Extra connects each iocx phase holds with an armed backoff timer
	 * while the workload runs, 0 = none (drive_iocx.c). */
	unsigned armed;

	/* Targets, taken in turn by successive connects (all numeric of
	 * one address family, or all names), or none: the built-in sink. */
	unsigned ntargets;
	struct bench_target targets[BENCH_MAX_TARGETS];
	bool by_name;			/* the targets are host names */
	bool name_sink;		/* ... one of them NAME:0, the sink's port */
	/* --resolver ADDR:PORT: the DNS server the engine asks for the
	 * names (engine option dns_servers), or NULL: the system's. */
	const char *resolver;
	enum bench_sink_mode sink_mode;
	unsigned sink_threads;		/* 0 = as many as workers, >= 2 */

	/* Baseline: alternate iocx and a raw loop for rounds rounds. */
	bool baseline;
	unsigned rounds;

	struct bench_output json;
	struct bench_output csv;
	const char *hdr_log;	/* --hdr-log PATH, or NULL */
	const char *svg;	/* --svg PATH, or NULL */
	bool quiet;		/* no banner, no progress lines */
	/* --start-at: the wall-clock time (seconds since the epoch, UTC)
	 * to begin at, so processes on several machines start together;
	 * 0 = at once. */
	double start_at;

	/*
	 * Request/response.  The request is the first payload: payload
	 * filler bytes, or the bytes of payload_file (main reads it) or of
	 * payload_hex (bench_hex_decode()); payload is their count then.
	 * A reply is expected when expect_bytes > 0 (that many bytes) or
	 * expect_until_len > 0 (up to and with that string).
	 */
	const char *payload_file;
	const char *payload_hex;
	uint64_t expect_bytes;
	char expect_until[BENCH_MAX_EXPECT];
	size_t expect_until_len;

	/* Scale mode (scale.c): open and hold this many connections
	 * instead of the phases, 0 = off. */
	uint64_t scale;
	uint64_t idle_ms;		/* scale: idle watchdog each, 0 = none */
	unsigned sources;		/* scale: 127.0.0.x sources, 0 = auto */
	/* With a reply to read: the connect and the whole reply must be
	 * done this long after the connect's start, or the connection is
	 * closed and counted IOCX_E_TIMEDOUT (a reply timeout); 0 without
	 * a reply to read. */
	uint64_t reply_timeout_ms;
	/* After the first Ctrl-C: how long connects in flight (and, with
	 * --scale, closes) get before the report. */
	uint64_t grace_ms;
};

/* Defaults that give a sensible run on a 2-vCPU machine under Wine. */
#define BENCH_DEFAULT_CONNECTS 20000
#define BENCH_DEFAULT_GRACE_MS 1000
#define BENCH_DEFAULT_CONCURRENCY 64
#define BENCH_DEFAULT_PAYLOAD 64
#define BENCH_DEFAULT_BATCH 64
/* Fewest acceptor threads the sink gets by default. */
#define BENCH_MIN_SINK_THREADS 2
#define BENCH_MAX_CONCURRENCY 65536
#define BENCH_MAX_WORKERS 256
#define BENCH_MAX_SINK_THREADS 16
#define BENCH_MAX_ROUNDS 100
/* --burst at most: the engine's connect_burst is a uint32_t; a burst
 * beyond a second's starts at the highest rates asks for nothing more. */
#define BENCH_MAX_BURST 1000000
#define BENCH_MAX_ARMED 1000000
#define BENCH_MAX_SCALE 1000000
/* --scale: connections per 127.0.0.x source address by default (Linux
 * has 28,232 ephemeral ports per address and destination). */
#define BENCH_SCALE_PER_SOURCE 16000
/* --reply-timeout when not given (with --expect-*). */
#define BENCH_DEFAULT_REPLY_TIMEOUT_MS 10000

enum bench_parse_result {
	BENCH_PARSE_OK = 0,
	BENCH_PARSE_HELP = 1,		/* --help: print usage, exit 0 */
	BENCH_PARSE_VERSION = 3,	/* --version: print it, exit 0 */
	BENCH_PARSE_USAGE = 2,		/* bad input: print err, exit 2 */
};

/*
 * Parse argv into *o (defaults first).  Values come as "--opt VALUE" or
 * "--opt=VALUE"; --json and --csv take an optional "=PATH" only.  Whole
 * numbers take a decimal suffix: k (1000), M (1000000), G (10^9), so
 * "5k" is 5000 (also for byte counts).  On
 * BENCH_PARSE_USAGE, err holds one line naming the offending argument and
 * what is allowed.  Addresses are parsed with bench_addr_parse() (on
 * Windows, Winsock must be started).
 */
enum bench_parse_result bench_parse(int argc, char **argv,
				    struct bench_options *o, char *err,
				    size_t errlen);

/*
 * Decode hex (pairs of hex digits, nothing else) into out, which has
 * room for strlen(hex) / 2 bytes; out may be NULL to check only.
 * Returns the byte count, or -1 when hex is not valid.
 */
long bench_hex_decode(const char *hex, unsigned char *out);

/* Whether a reply is read after each connect (--expect-*). */
bool bench_expects_reply(const struct bench_options *o);

/* Print the option summary to f. */
void bench_usage(FILE *f);

#endif /* IOCX_BENCH_OPTIONS_H */
