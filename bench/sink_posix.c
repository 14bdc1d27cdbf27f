/*
 * Loopback sink for the bench on POSIX sockets: blocking accept threads
 * (see sink.h); in mode hold, the accepted sockets are kept in one array
 * under a mutex until sink_stop() closes them.  Stopping: set the flag,
 * then shut the listener down, which on Linux makes every blocked
 * accept() return at once; a connect per acceptor backs that up where
 * shutdown() of a listener does not.
 *
 * The sink runs in the bench's own process, so it shares the CPUs with
 * the client; its threads' CPU time is measured separately so the bench
 * can report client CPU per connect.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "sink.h"

struct sink {
	int listener;
	struct sockaddr_in addr;
	enum bench_sink_mode mode;
	size_t payload;
	unsigned nthreads;
	pthread_t threads[BENCH_MAX_SINK_THREADS];
	atomic_bool stopping;
	_Atomic uint64_t accepted;
	_Atomic uint64_t handled;	/* read (if asked) and closed */
	_Atomic uint64_t bytes;
	/* BENCH_SINK_HOLD: the connections held open, until sink_stop(). */
	pthread_mutex_t hold_lock;
	int *held;
	size_t nheld, held_cap;
};

/* Keep s open (mode hold); false when there is no room to keep it. */
static bool hold(struct sink *k, int s)
{
	bool ok = true;

	pthread_mutex_lock(&k->hold_lock);
	if (k->nheld == k->held_cap) {
		size_t cap = k->held_cap ? k->held_cap * 2 : 1024;
		int *more = realloc(k->held, cap * sizeof(*more));

		if (more) {
			k->held = more;
			k->held_cap = cap;
		}
	}
	if (k->nheld < k->held_cap)
		k->held[k->nheld++] = s;
	else
		ok = false;
	pthread_mutex_unlock(&k->hold_lock);
	return ok;
}

/* Send buf[0..len) in full; false when the connection broke. */
static bool send_all(int s, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(s, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * Read up to want bytes (or until EOF/error), sending each piece back
 * when echo is set; return what arrived.
 */
static size_t drain(int s, size_t want, bool echo)
{
	char buf[16384];
	size_t got = 0;

	while (got < want) {
		size_t room = want - got < sizeof(buf) ? want - got
						       : sizeof(buf);
		ssize_t n = recv(s, buf, room, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (echo && !send_all(s, buf, (size_t)n))
			break;
	}
	return got;
}

static void *acceptor(void *arg)
{
	struct sink *k = arg;

	for (;;) {
		int s = accept4(k->listener, NULL, NULL, SOCK_CLOEXEC);

		if (atomic_load(&k->stopping)) {
			if (s >= 0)
				close(s);
			return NULL;
		}
		if (s < 0)
			continue;
		atomic_fetch_add(&k->accepted, 1);
		if (k->mode != BENCH_SINK_CLOSE && k->payload > 0)
			atomic_fetch_add(&k->bytes,
					 drain(s, k->payload,
					       k->mode == BENCH_SINK_ECHO));
		if (k->mode != BENCH_SINK_HOLD || !hold(k, s))
			close(s);
		atomic_fetch_add(&k->handled, 1);
	}
}

/* See sink.h. */
struct sink *sink_start(unsigned threads, enum bench_sink_mode mode,
			size_t payload)
{
	struct sink *k = calloc(1, sizeof(*k));
	socklen_t len = sizeof(k->addr);

	if (!k) {
		fprintf(stderr, "iocx-bench: sink: out of memory\n");
		return NULL;
	}
	if (threads < BENCH_MIN_SINK_THREADS)
		threads = BENCH_MIN_SINK_THREADS;
	if (threads > BENCH_MAX_SINK_THREADS)
		threads = BENCH_MAX_SINK_THREADS;
	k->mode = mode;
	k->payload = payload;
	pthread_mutex_init(&k->hold_lock, NULL);
	k->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	k->addr.sin_family = AF_INET;
	k->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (k->listener < 0 ||
	    bind(k->listener, (struct sockaddr *)&k->addr, len) != 0 ||
	    listen(k->listener, SOMAXCONN) != 0 ||
	    getsockname(k->listener, (struct sockaddr *)&k->addr, &len) != 0) {
		perror("iocx-bench: sink: cannot listen on 127.0.0.1");
		goto err;
	}
	for (; k->nthreads < threads; k->nthreads++) {
		if (pthread_create(&k->threads[k->nthreads], NULL, acceptor,
				   k) != 0)
			break;
	}
	if (k->nthreads == 0) {
		fprintf(stderr, "iocx-bench: sink: no acceptor thread\n");
		goto err;
	}
	return k;
err:
	if (k->listener >= 0)
		close(k->listener);
	pthread_mutex_destroy(&k->hold_lock);
	free(k);
	return NULL;
}

/* See sink.h. */
const struct sockaddr *sink_address(const struct sink *k, size_t *len)
{
	*len = sizeof(k->addr);
	return (const struct sockaddr *)&k->addr;
}

/* See sink.h. */
unsigned sink_threads(const struct sink *k)
{
	return k->nthreads;
}

/* See sink.h. */
uint64_t sink_wait(struct sink *k, uint64_t handled, unsigned quiet_ms)
{
	uint64_t seen = atomic_load(&k->handled);
	uint64_t quiet_since = iocx__now_ns();

	while (seen < handled) {
		struct timespec ms = { 0, 1000000 };
		uint64_t now;

		nanosleep(&ms, NULL);
		now = iocx__now_ns();
		if (atomic_load(&k->handled) != seen) {
			seen = atomic_load(&k->handled);
			quiet_since = now;
		} else if (now - quiet_since > quiet_ms * 1000000ull) {
			break;
		}
	}
	return seen;
}

/* See sink.h. */
void sink_counts(const struct sink *k, uint64_t *accepted, uint64_t *bytes)
{
	*accepted = atomic_load(&k->accepted);
	*bytes = atomic_load(&k->bytes);
}

/* See sink.h. */
uint64_t sink_cpu_ns(const struct sink *k)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < k->nthreads; i++) {
		struct timespec ts;
		clockid_t cid;

		if (pthread_getcpuclockid(k->threads[i], &cid) == 0 &&
		    clock_gettime(cid, &ts) == 0)
			sum += (uint64_t)ts.tv_sec * 1000000000u +
			       (uint64_t)ts.tv_nsec;
	}
	return sum;
}

/* See sink.h. */
void sink_stop(struct sink *k)
{
	atomic_store(&k->stopping, true);
	shutdown(k->listener, SHUT_RDWR);
	for (unsigned i = 0; i < k->nthreads; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s >= 0) {
			connect(s, (struct sockaddr *)&k->addr,
				sizeof(k->addr));
			close(s);
		}
	}
	for (unsigned i = 0; i < k->nthreads; i++)
		pthread_join(k->threads[i], NULL);
	close(k->listener);
	for (size_t i = 0; i < k->nheld; i++)
		close(k->held[i]);
	free(k->held);
	pthread_mutex_destroy(&k->hold_lock);
	free(k);
}
