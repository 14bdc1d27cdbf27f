/*
 * resolver-choice: which Linux resolver the engine should drive (issue
 * 16, docs/names.md "The Linux resolver").  Queries per second and CPU
 * per query with a fixed number of names in flight, for:
 *
 *   c-ares   the engine's own resolver, src/linux/resolve_ares.c built
 *            into this tool unchanged (one c-ares thread, poll()), fed
 *            through struct iocx_resolver as the engine feeds it;
 *   gai_a    glibc's getaddrinfo_a(), GAI_NOWAIT, SIGEV_THREAD
 *            notification (what a library can use: it owns no signal);
 *   pool     a pool of threads calling the blocking getaddrinfo().
 *
 * Every query is one A lookup of a distinct name (nNNN.iocx.test), so
 * each is one DNS packet whatever the resolver; the engine asks AAAA and
 * A per name, twice this.
 *
 * Where the queries go: getaddrinfo() can only ask resolv.conf's server,
 * so the tool first moves itself into a network namespace of its own
 * (only a loopback device) and a private mount namespace, where it
 * bind-mounts a resolv.conf naming 127.0.0.1 and an nsswitch.conf with
 * "hosts: dns".  The tests' DNS responder (tests/net/dns_responder.c)
 * answers on 127.0.0.1:53 in a child process, so the CPU measured
 * (getrusage of this process) is the client side only.  Inside the
 * namespace no other server is reachable: no query can reach the
 * machine's configured DNS server.  Needs root (unshare); without it
 * the tool stops and measures nothing.
 *
 * Usage: resolver-choice [--queries N] [--in-flight N] [--rounds N]
 *                        [--pool-threads N]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iocx.h"
#include "linux/lx.h"
#include "dns_responder.h"

#define MAX_IN_FLIGHT 10000
#define NAME_LEN 32
/* A query that outlives this is counted as lost and the run stops. */
#define RUN_LIMIT_S 120

/* One lookup slot; the same array serves every method. */
struct slot {
	unsigned idx;
	char name[NAME_LEN];
	struct gaicb cb;		/* gai_a */
	struct gaicb *list[1];
	struct slot *next;		/* pool's work queue */
};

/* The engine's struct iocx_query is opaque; the tool's own. */
struct iocx_query {
	struct slot *s;
};

struct run {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* an answer for the main thread */
	pthread_cond_t work;		/* pool: a lookup queued, or stop */
	unsigned *done;			/* finished slots, not yet refilled */
	unsigned ndone;
	unsigned ok, failed;
	/* pool */
	struct slot *head, *tail;
	bool stop;
};

static struct run R;
static struct slot *slots;
static struct iocx_query *queries;

static void finished(struct slot *s, bool ok)
{
	pthread_mutex_lock(&R.lock);
	R.done[R.ndone++] = s->idx;
	if (ok)
		R.ok++;
	else
		R.failed++;
	pthread_cond_signal(&R.cond);
	pthread_mutex_unlock(&R.lock);
}

/* The engine's entry points, for resolve_ares.c's answers. */
void iocx_query_done_ttl(iocx_query *q, int status, uint32_t os_code,
			 const struct sockaddr_storage *addrs, size_t n,
			 uint32_t ttl_s)
{
	(void)os_code;
	(void)addrs;
	(void)ttl_s;
	finished(q->s, status == IOCX_OK && n > 0);
}

void iocx_query_done(iocx_query *q, int status, uint32_t os_code,
		     const struct sockaddr_storage *addrs, size_t n)
{
	iocx_query_done_ttl(q, status, os_code, addrs, n, 0);
}

/* --- methods ----------------------------------------------------------- */

struct method {
	const char *name;
	int (*init)(unsigned threads);
	int (*start)(struct slot *s);
	void (*fini)(void);
};

static struct iocx_ares *ares;
static const struct iocx_resolver *ares_ops;

static int ares_init(unsigned threads)
{
	(void)threads;
	ares = iocx__ares_create("127.0.0.1:53");
	if (!ares)
		return -1;
	ares_ops = iocx__ares_ops(ares);
	return 0;
}

static int ares_start1(struct slot *s)
{
	return ares_ops->start(ares_ops->ctx, s->name, AF_INET,
			       &queries[s->idx]) == IOCX_OK ? 0 : -1;
}

static void ares_fini(void)
{
	iocx__ares_destroy(ares);
	ares = NULL;
}

static const struct addrinfo hints4 = {
	.ai_family = AF_INET,
	.ai_socktype = SOCK_STREAM,
	.ai_protocol = IPPROTO_TCP,
};

static void gai_notify(union sigval v)
{
	struct slot *s = v.sival_ptr;
	int rc = gai_error(&s->cb);

	if (s->cb.ar_result)
		freeaddrinfo(s->cb.ar_result);
	finished(s, rc == 0);
}

static int gai_init(unsigned threads)
{
	(void)threads;
	return 0;
}

static int gai_start(struct slot *s)
{
	struct sigevent ev = {
		.sigev_notify = SIGEV_THREAD,
		.sigev_notify_function = gai_notify,
		.sigev_value.sival_ptr = s,
	};

	memset(&s->cb, 0, sizeof(s->cb));
	s->cb.ar_name = s->name;
	s->cb.ar_request = &hints4;
	s->list[0] = &s->cb;
	return getaddrinfo_a(GAI_NOWAIT, s->list, 1, &ev) == 0 ? 0 : -1;
}

static void nothing(void)
{
}

static pthread_t *pool;
static unsigned npool;

static void *pool_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct addrinfo *res = NULL;
		struct slot *s;
		int rc;

		pthread_mutex_lock(&R.lock);
		while (!R.head && !R.stop)
			pthread_cond_wait(&R.work, &R.lock);
		s = R.head;
		if (!s) {
			pthread_mutex_unlock(&R.lock);
			return NULL;
		}
		R.head = s->next;
		if (!R.head)
			R.tail = NULL;
		pthread_mutex_unlock(&R.lock);
		rc = getaddrinfo(s->name, NULL, &hints4, &res);
		if (res)
			freeaddrinfo(res);
		finished(s, rc == 0);
	}
}

static int pool_init(unsigned threads)
{
	pool = calloc(threads, sizeof(*pool));
	if (!pool)
		return -1;
	R.stop = false;
	for (npool = 0; npool < threads; npool++)
		if (pthread_create(&pool[npool], NULL, pool_main, NULL) != 0)
			return -1;
	return 0;
}

static int pool_start(struct slot *s)
{
	pthread_mutex_lock(&R.lock);
	s->next = NULL;
	if (R.tail)
		R.tail->next = s;
	else
		R.head = s;
	R.tail = s;
	pthread_cond_signal(&R.work);
	pthread_mutex_unlock(&R.lock);
	return 0;
}

static void pool_fini(void)
{
	pthread_mutex_lock(&R.lock);
	R.stop = true;
	pthread_cond_broadcast(&R.work);
	pthread_mutex_unlock(&R.lock);
	for (unsigned i = 0; i < npool; i++)
		pthread_join(pool[i], NULL);
	free(pool);
	pool = NULL;
	npool = 0;
}

static const struct method methods[] = {
	{ "c-ares", ares_init, ares_start1, ares_fini },
	{ "gai_a", gai_init, gai_start, nothing },
	{ "pool", pool_init, pool_start, pool_fini },
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* --- one measured run ---------------------------------------------------- */

struct result {
	double s, qps, cpu_us;
	unsigned ok, failed;
	unsigned long drops;
};

/* UDP datagrams this network namespace dropped for a full receive
 * buffer so far (the RcvbufErrors of /proc/net/snmp): a dropped query
 * or answer costs its resolver a retry after a 1 s timeout. */
static unsigned long udp_drops(void)
{
	char line[512], names[512] = "";
	unsigned long v = 0;
	FILE *f = fopen("/proc/self/net/snmp", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *n, *x, *sn = NULL, *sx = NULL;

		if (strncmp(line, "Udp:", 4) != 0)
			continue;
		if (!names[0]) {
			snprintf(names, sizeof(names), "%s", line);
			continue;
		}
		n = strtok_r(names, " \n", &sn);
		x = strtok_r(line, " \n", &sx);
		while (n && x && strcmp(n, "RcvbufErrors") != 0) {
			n = strtok_r(NULL, " \n", &sn);
			x = strtok_r(NULL, " \n", &sx);
		}
		if (n && x)
			v = strtoul(x, NULL, 10);
		break;
	}
	fclose(f);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static unsigned name_seq;

static void name_slot(struct slot *s)
{
	/* Fresh names every query: nothing may answer from a cache. */
	snprintf(s->name, sizeof(s->name), "n%u.iocx.test", name_seq++);
}

/* Run queries lookups with in_flight outstanding; -1 if it got stuck. */
static int measure(const struct method *m, unsigned queries_n,
		   unsigned in_flight, unsigned threads, struct result *out)
{
	unsigned issued = 0, finished_n = 0;
	unsigned long d0 = udp_drops();
	double t0, c0, limit;

	R.ndone = R.ok = R.failed = 0;
	R.head = R.tail = NULL;
	if (m->init(threads) != 0) {
		fprintf(stderr, "%s: could not start\n", m->name);
		return -1;
	}
	t0 = now_s();
	c0 = cpu_s();
	limit = t0 + RUN_LIMIT_S;
	for (unsigned i = 0; i < in_flight && issued < queries_n; i++) {
		name_slot(&slots[i]);
		if (m->start(&slots[i]) != 0)
			goto stuck;
		issued++;
	}
	while (finished_n < queries_n) {
		unsigned take[MAX_IN_FLIGHT], n;
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&R.lock);
		while (R.ndone == 0 && now_s() < limit)
			pthread_cond_timedwait(&R.cond, &R.lock, &until);
		n = R.ndone;
		memcpy(take, R.done, n * sizeof(take[0]));
		R.ndone = 0;
		pthread_mutex_unlock(&R.lock);
		if (n == 0)
			goto stuck;
		finished_n += n;
		for (unsigned k = 0; k < n && issued < queries_n; k++) {
			name_slot(&slots[take[k]]);
			if (m->start(&slots[take[k]]) != 0)
				goto stuck;
			issued++;
		}
	}
	out->s = now_s() - t0;
	out->cpu_us = (cpu_s() - c0) * 1e6 / queries_n;
	out->qps = queries_n / out->s;
	out->ok = R.ok;
	out->failed = R.failed;
	out->drops = udp_drops() - d0;
	m->fini();
	return 0;
stuck:
	/* Lookups still running hold slots: leave them, the process ends. */
	fprintf(stderr, "%s: stuck after %u of %u answers\n", m->name,
		finished_n, queries_n);
	return -1;
}

/* --- the private namespace ----------------------------------------------- */

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int bind_file(const char *text, const char *tmpl, const char *target)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s", tmpl);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	if (write_file(path, text) != 0 ||
	    mount(path, target, NULL, MS_BIND, NULL) != 0) {
		perror(target);
		unlink(path);
		return -1;
	}
	/* The mount keeps the file reachable; its name is not needed. */
	unlink(path);
	return 0;
}

static int isolate(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
		perror("unshare (needs root)");
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		perror("mount --make-rprivate /");
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		perror("lo");
		return -1;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
		perror("lo up");
		close(fd);
		return -1;
	}
	close(fd);
	if (bind_file("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
		      "/tmp/iocx-resolv-XXXXXX", "/etc/resolv.conf") != 0 ||
	    bind_file("hosts: dns\n", "/tmp/iocx-nss-XXXXXX",
		      "/etc/nsswitch.conf") != 0)
		return -1;
	return 0;
}

/* The responder in a child, so its CPU is not the client's. */
static pid_t start_responder(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct dns_responder *d = dns_start_port("127.0.0.1", 53);
		struct dns_script a = { .rcode = DNS_NOERROR, .n = 1 };
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.addrs[0];

		/* Never outlive the tool. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (!d)
			_exit(1);
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(0x7f000001);
		dns_script(d, DNS_A, &a);
		close(p[0]);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		/* Until the parent closes its end (or dies). */
		close(p[1]);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static unsigned arg_u(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "bad number: %s (%u..%u)\n", s, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--queries N] [--in-flight N] "
		"[--rounds N] [--pool-threads N]\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	unsigned queries_n = 20000, in_flight = 1000, rounds = 3, threads = 64;
	double qps[NMETHODS][16], cpu[NMETHODS][16];
	int rc = 1;
	pid_t resp;

	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v && !strcmp(argv[i], "--queries"))
			queries_n = arg_u(v, 1, 10000000);
		else if (v && !strcmp(argv[i], "--in-flight"))
			in_flight = arg_u(v, 1, MAX_IN_FLIGHT);
		else if (v && !strcmp(argv[i], "--rounds"))
			rounds = arg_u(v, 1, 16);
		else if (v && !strcmp(argv[i], "--pool-threads"))
			threads = arg_u(v, 1, 1024);
		else
			return usage(argv[0]);
	}
	if (isolate() != 0)
		return 1;
	resp = start_responder();
	if (resp < 0) {
		fprintf(stderr, "the DNS responder did not start\n");
		return 1;
	}
	slots = calloc(in_flight, sizeof(*slots));
	queries = calloc(in_flight, sizeof(*queries));
	R.done = calloc(in_flight, sizeof(*R.done));
	if (!slots || !queries || !R.done)
		goto out;
	pthread_mutex_init(&R.lock, NULL);
	pthread_cond_init(&R.cond, NULL);
	pthread_cond_init(&R.work, NULL);
	for (unsigned i = 0; i < in_flight; i++) {
		slots[i].idx = i;
		queries[i].s = &slots[i];
	}
	printf("# %u A lookups per run, %u in flight, pool of %u threads, "
	       "%u rounds\n", queries_n, in_flight, threads, rounds);
	printf("%-8s %5s %9s %9s %11s %6s %6s %6s\n", "method", "round",
	       "seconds", "qps", "cpu_us/q", "ok", "failed", "drops");
	/* Interleaved rounds: the machine's load drifts alike for all. */
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t m = 0; m < NMETHODS; m++) {
			struct result res;

			if (measure(&methods[m], queries_n, in_flight,
				    threads, &res) != 0)
				goto out;
			printf("%-8s %5u %9.3f %9.0f %11.1f %6u %6u %6lu\n",
			       methods[m].name, r + 1, res.s, res.qps,
			       res.cpu_us, res.ok, res.failed, res.drops);
			fflush(stdout);
			qps[m][r] = res.qps;
			cpu[m][r] = res.cpu_us;
		}
	}
	printf("# medians\n");
	for (size_t m = 0; m < NMETHODS; m++) {
		qsort(qps[m], rounds, sizeof(double), cmp_double);
		qsort(cpu[m], rounds, sizeof(double), cmp_double);
		printf("%-8s qps %9.0f  cpu_us/q %7.1f\n", methods[m].name,
		       qps[m][rounds / 2], cpu[m][rounds / 2]);
	}
	rc = 0;
out:
	kill(resp, SIGTERM);
	waitpid(resp, NULL, 0);
	return rc;
}
