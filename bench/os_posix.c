/*
 * OS shims of the bench for POSIX systems (see os.h): clock_gettime, a
 * mutex and condition variable for the wake-up event (timed waits on
 * CLOCK_MONOTONIC are precise to well under the millisecond the rate
 * pacer needs), and no network start-up beyond ignoring SIGPIPE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "os.h"

struct os_refuser {
	int fd;
	struct sockaddr_storage addr;
	socklen_t len;
};

struct os_event {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* on CLOCK_MONOTONIC */
	bool set;
};

static uint64_t ns_of(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* See os.h. */
double os_epoch_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* See os.h. */
uint64_t os_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return ns_of(&ts);
}

/* See os.h. */
void os_yield(void)
{
	sched_yield();
}

/* See os.h. */
struct os_event *os_event_create(void)
{
	struct os_event *e = calloc(1, sizeof(*e));
	pthread_condattr_t attr;

	if (!e) {
		fprintf(stderr, "iocx-bench: out of memory\n");
		return NULL;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &attr);
	pthread_condattr_destroy(&attr);
	return e;
}

/* See os.h. */
void os_event_set(struct os_event *e)
{
	pthread_mutex_lock(&e->lock);
	e->set = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* See os.h. */
bool os_event_wait(struct os_event *e, uint64_t timeout_ns)
{
	uint64_t until = iocx__now_ns() + timeout_ns;
	struct timespec ts = {
		.tv_sec = (time_t)(until / 1000000000u),
		.tv_nsec = (long)(until % 1000000000u),
	};
	bool set;

	pthread_mutex_lock(&e->lock);
	while (!e->set) {
		if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) != 0)
			break;		/* ETIMEDOUT */
	}
	set = e->set;
	e->set = false;		/* auto-reset */
	pthread_mutex_unlock(&e->lock);
	return set;
}

/* See os.h. */
void os_event_destroy(struct os_event *e)
{
	if (!e)
		return;
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

struct interrupt {
	sigset_t set;
	void (*fn)(int signo, void *arg);
	void *arg;
};

/* Takes SIGINT and SIGTERM for the whole process (they are blocked in
 * every thread): the first calls fn, the second ends the process. */
static void *interrupt_thread(void *arg)
{
	struct interrupt *in = arg;
	bool first = true;
	int sig;

	for (;;) {
		if (sigwait(&in->set, &sig) != 0)
			continue;
		if (!first)
			_exit(128 + sig);
		first = false;
		in->fn(sig, in->arg);
	}
	return NULL;
}

/* See os.h. */
int os_on_interrupt(void (*fn)(int signo, void *arg), void *arg)
{
	static struct interrupt in;
	pthread_t t;

	in.fn = fn;
	in.arg = arg;
	sigemptyset(&in.set);
	sigaddset(&in.set, SIGINT);
	sigaddset(&in.set, SIGTERM);
	/* Threads inherit the mask: block before any is created. */
	if (pthread_sigmask(SIG_BLOCK, &in.set, NULL) != 0 ||
	    pthread_create(&t, NULL, interrupt_thread, &in) != 0) {
		fprintf(stderr, "iocx-bench: cannot watch for interrupts\n");
		return -1;
	}
	pthread_detach(t);
	return 0;
}

/* See os.h. */
int os_replace_file(const char *tmp, const char *path)
{
	return rename(tmp, path) == 0 ? 0 : -1;
}

/* See os.h. */
struct os_refuser *os_refuser_open(int family)
{
	struct os_refuser *r = calloc(1, sizeof(*r));
	int err;

	if (!r) {
		fprintf(stderr, "iocx-bench: out of memory\n");
		return NULL;
	}
	r->len = (socklen_t)bench_addr_loopback(family, &r->addr);
	r->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		err = errno;
		goto err_free;
	}
	/* Bound and never listening: every SYN to it is answered by RST. */
	if (bind(r->fd, (struct sockaddr *)&r->addr, r->len) != 0 ||
	    getsockname(r->fd, (struct sockaddr *)&r->addr, &r->len) != 0) {
		err = errno;
		goto err_close;
	}
	return r;

err_close:
	close(r->fd);
err_free:
	fprintf(stderr, "iocx-bench: cannot bind a refusing port on %s: %s\n",
		family == AF_INET6 ? "::1" : "127.0.0.1", strerror(err));
	free(r);
	return NULL;
}

/* See os.h. */
const struct sockaddr *os_refuser_address(const struct os_refuser *r,
					  size_t *len)
{
	*len = r->len;
	return (const struct sockaddr *)&r->addr;
}

/* See os.h. */
void os_refuser_close(struct os_refuser *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r);
}

/* See os.h. */
int os_net_init(void)
{
	/* A peer's reset must not kill the bench on a send. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* See os.h. */
void os_net_fini(void)
{
}

/*
 * See os.h.  The file stays open from the first call on: a run that used
 * up its descriptors (--scale) still reads it.
 */
uint64_t os_rss_bytes(void)
{
	static _Atomic int fd = -1;
	unsigned long long size, resident;
	char buf[128];
	ssize_t n;
	int f = atomic_load(&fd);

	if (f < 0) {
		int mine = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

		if (mine < 0)
			return 0;
		if (atomic_compare_exchange_strong(&fd, &f, mine))
			f = mine;
		else
			close(mine);	/* f is the one another call opened */
	}
	n = pread(f, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open); 0 if unknown. */
static uint64_t nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	unsigned long long v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* See os.h. */
uint64_t os_raise_nofile(uint64_t want, uint64_t *before, char *why,
			 size_t n)
{
	struct rlimit rl;

	if (n)
		why[0] = '\0';
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(why, n, "getrlimit: %s", strerror(errno));
		*before = 0;
		return 0;
	}
	*before = rl.rlim_cur;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = rl;
		uint64_t ceiling = nr_open();
		uint64_t to = ceiling && ceiling < want ? ceiling : want;

		up.rlim_cur = to;
		if (up.rlim_max != RLIM_INFINITY && up.rlim_max < to)
			up.rlim_max = to;	/* needs CAP_SYS_RESOURCE */
		if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
			int err = errno;

			snprintf(why, n, "raising the hard limit from %llu to "
				 "%llu failed: %s%s",
				 (unsigned long long)rl.rlim_max,
				 (unsigned long long)up.rlim_max,
				 strerror(err), err == EPERM ?
				 " (that needs CAP_SYS_RESOURCE)" : "");
			/* Not allowed past the hard limit: go up to it. */
			if (rl.rlim_cur < rl.rlim_max) {
				up.rlim_cur = rl.rlim_max;
				up.rlim_max = rl.rlim_max;
				setrlimit(RLIMIT_NOFILE, &up);
			}
		} else if (to < want) {
			snprintf(why, n, "the kernel allows at most %llu "
				 "(fs.nr_open)", (unsigned long long)to);
		}
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}
