/*
 * iocx-bench, first version: connects per second against the built-in
 * loopback sink (or HOST:PORT), keeping --concurrency connects in flight.
 * Each connect carries --payload bytes and is closed as soon as it is
 * reported.  Exits 1 when any connect failed, 2 on bad usage.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iocx.h"
#include "sink.h"

struct options {
	uint64_t connects;
	unsigned concurrency;
	unsigned workers;
	size_t payload;
	bool abort_close;
	bool fastopen;
	const char *target;
};

struct run {
	struct options opt;
	iocx_engine *engine;
	struct iocx_connect_request req;
	struct sockaddr_storage addr;
	_Atomic uint64_t started;	/* connect slots taken */
	_Atomic uint64_t finished;	/* on_close or synchronous failure */
	_Atomic uint64_t ok;
	_Atomic uint64_t latency_sum_ns;
	_Atomic uint64_t latency_max_ns;
	_Atomic uint64_t errors[IOCX_ERROR_COUNT];
	HANDLE done;
	const char *backend;		/* copied before the engine is gone */
	unsigned workers;
};

static void finish_one(struct run *r)
{
	if (atomic_fetch_add(&r->finished, 1) + 1 == r->opt.connects)
		SetEvent(r->done);
}

/*
 * Start connects until one is in flight or all were started.  A connect
 * that fails synchronously counts as finished and its slot moves on, so
 * the run always ends.  Returns false when no slot was left.
 */
static bool start_one(struct run *r)
{
	for (;;) {
		int rc;

		if (atomic_fetch_add(&r->started, 1) >= r->opt.connects)
			return false;
		rc = iocx_connect(r->engine, &r->req, NULL);
		if (rc == IOCX_OK)
			return true;
		atomic_fetch_add(&r->errors[-rc], 1);
		finish_one(r);
	}
}

static void on_connect(iocx_conn *c, const struct iocx_connect_result *res,
		       void *user)
{
	struct run *r = user;
	uint64_t max = atomic_load(&r->latency_max_ns);

	if (res->status == IOCX_OK) {
		atomic_fetch_add(&r->ok, 1);
		atomic_fetch_add(&r->latency_sum_ns, res->latency_ns);
		while (res->latency_ns > max &&
		       !atomic_compare_exchange_weak(&r->latency_max_ns, &max,
						     res->latency_ns))
			;
	} else {
		atomic_fetch_add(&r->errors[-res->status], 1);
	}
	iocx_close(c, r->opt.abort_close ? IOCX_CLOSE_ABORT
					 : IOCX_CLOSE_GRACEFUL);
	start_one(r);
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	(void)c;
	(void)reason;
	finish_one(user);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iocx-bench [options]\n"
		"  --connects N       total connects (default 20000)\n"
		"  --concurrency N    connects in flight (default 64)\n"
		"  --workers N        engine worker threads (default: CPUs)\n"
		"  --payload BYTES    first payload per connect (default 64,"
		" max %u)\n"
		"  --close MODE       abort (RST, default) or graceful\n"
		"  --fastopen         ask for TCP Fast Open\n"
		"  --target HOST:PORT connect there instead of the built-in"
		" sink\n",
		IOCX_MAX_PAYLOAD);
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	o->connects = 20000;
	o->concurrency = 64;
	o->payload = 64;
	o->abort_close = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;

		if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--fastopen")) {
			o->fastopen = true;
			continue;
		} else if (!v) {
			fprintf(stderr, "iocx-bench: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--connects") && parse_u64(v, 1, UINT32_MAX, &n))
			o->connects = n;
		else if (!strcmp(a, "--concurrency") &&
			 parse_u64(v, 1, 65536, &n))
			o->concurrency = (unsigned)n;
		else if (!strcmp(a, "--workers") && parse_u64(v, 0, 256, &n))
			o->workers = (unsigned)n;
		else if (!strcmp(a, "--payload") &&
			 parse_u64(v, 0, IOCX_MAX_PAYLOAD, &n))
			o->payload = (size_t)n;
		else if (!strcmp(a, "--close") &&
			 (!strcmp(v, "abort") || !strcmp(v, "graceful")))
			o->abort_close = !strcmp(v, "abort");
		else if (!strcmp(a, "--target"))
			o->target = v;
		else {
			fprintf(stderr, "iocx-bench: bad option or value: %s %s\n",
				a, v);
			return -1;
		}
	}
	return 0;
}

/* Resolve HOST:PORT or [V6]:PORT numerically into addr. */
static bool parse_target(const char *t, struct sockaddr_storage *addr,
			 int *len)
{
	char host[128];
	const char *colon = strrchr(t, ':');
	size_t hlen;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST |
					      AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;

	if (!colon || colon == t)
		return false;
	hlen = (size_t)(colon - t);
	if (t[0] == '[' && hlen >= 2 && t[hlen - 1] == ']') {
		t++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return false;
	memcpy(host, t, hlen);
	host[hlen] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return false;
	memcpy(addr, ai->ai_addr, ai->ai_addrlen);
	*len = (int)ai->ai_addrlen;
	freeaddrinfo(ai);
	return true;
}

static int report(struct run *r, double secs, uint64_t accepted,
		  uint64_t sink_bytes, bool have_sink)
{
	uint64_t ok = atomic_load(&r->ok), failed = r->opt.connects - ok;
	double avg_ms = ok ? atomic_load(&r->latency_sum_ns) / 1e6 / ok : 0;

	printf("iocx-bench: backend %s, %u workers, concurrency %u, "
	       "payload %zu B, close %s%s\n",
	       r->backend, r->workers, r->opt.concurrency,
	       r->opt.payload, r->opt.abort_close ? "abort" : "graceful",
	       r->opt.fastopen ? ", fastopen" : "");
	printf("  connects    %llu ok, %llu failed in %.3f s\n",
	       (unsigned long long)ok, (unsigned long long)failed, secs);
	printf("  rate        %.0f connects/s\n", secs > 0 ? ok / secs : 0);
	printf("  latency     avg %.3f ms, max %.3f ms\n", avg_ms,
	       atomic_load(&r->latency_max_ns) / 1e6);
	if (have_sink)
		printf("  sink        %llu accepted, %llu payload bytes\n",
		       (unsigned long long)accepted,
		       (unsigned long long)sink_bytes);
	for (int i = 1; i < IOCX_ERROR_COUNT; i++) {
		uint64_t n = atomic_load(&r->errors[i]);

		if (n)
			printf("  error       %-24s %llu\n", iocx_error_name(-i),
			       (unsigned long long)n);
	}
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct run r;
	struct iocx_engine_options eo;
	struct sink *sink = NULL;
	char *payload;
	int addr_len, rc;
	uint64_t accepted = 0, sink_bytes = 0;
	LARGE_INTEGER freq, t0, t1;
	WSADATA wsa;

	if (parse_args(argc, argv, &r.opt) != 0) {
		usage(stderr);
		return 2;
	}
	WSAStartup(MAKEWORD(2, 2), &wsa);
	if (r.opt.target) {
		if (!parse_target(r.opt.target, &r.addr, &addr_len)) {
			fprintf(stderr, "iocx-bench: bad --target %s "
				"(want IPv4:PORT or [IPv6]:PORT)\n", r.opt.target);
			return 2;
		}
	} else {
		sink = sink_start(2, r.opt.payload);
		if (!sink)
			return 1;
		const struct sockaddr *sa = sink_address(sink, &addr_len);

		memcpy(&r.addr, sa, (size_t)addr_len);
	}

	payload = malloc(r.opt.payload + 1);
	if (!payload)
		return 1;
	for (size_t i = 0; i < r.opt.payload; i++)
		payload[i] = (char)('a' + i % 26);
	iocx_engine_options_init(&eo);
	eo.workers = r.opt.workers;
	rc = iocx_engine_create(&eo, &r.engine);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx-bench: engine: %s\n", iocx_strerror(rc));
		return 1;
	}
	r.backend = iocx_engine_backend(r.engine);
	r.workers = iocx_engine_workers(r.engine);
	r.req = (struct iocx_connect_request){
		.remote = (struct sockaddr *)&r.addr,
		.remote_len = (size_t)addr_len,
		.payload = payload,
		.payload_len = r.opt.payload,
		.payload_ownership = IOCX_PAYLOAD_BORROW,
		.flags = r.opt.fastopen ? IOCX_CONNECT_FASTOPEN : 0,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = &r,
	};
	r.done = CreateEventA(NULL, TRUE, FALSE, NULL);

	QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&t0);
	for (unsigned i = 0; i < r.opt.concurrency && start_one(&r); i++)
		;
	/* Bounded: even 1 connect/s would finish far sooner for defaults. */
	if (WaitForSingleObject(r.done, 3600 * 1000) != WAIT_OBJECT_0)
		fprintf(stderr, "iocx-bench: run did not finish in time\n");
	QueryPerformanceCounter(&t1);

	iocx_engine_destroy(r.engine);
	if (sink)
		sink_stop(sink, &accepted, &sink_bytes);
	rc = report(&r, (double)(t1.QuadPart - t0.QuadPart) / freq.QuadPart,
		    accepted, sink_bytes, sink != NULL);
	CloseHandle(r.done);
	free(payload);
	WSACleanup();
	return rc;
}
