/*
 * The Linux half of the net-test helpers (contracts in peer.h): pthread
 * shims, the process bits (backend under test, descriptor limit,
 * watchdog, descriptor count), poll() for the listeners, and the recording
 * and fault-injecting wrappers on the iocx__linux_sys table.
 */
#define _GNU_SOURCE
#include "peer.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include <cmocka.h>

#include "peer_os.h"
#ifndef PEER_PUBLIC_API
#include "linux/sys.h"
#endif

/* ---- shims ------------------------------------------------------------ */

peer_tid peer_thread_id(void)
{
	return (peer_tid)syscall(SYS_gettid);
}

/* A manual-reset event; also what a thread sets when its function ends. */
struct peer_event {
	iocx_mutex lock;
	iocx_cond cv;
	bool set;
};

peer_event *peer_event_new(void)
{
	peer_event *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	iocx__mutex_init(&e->lock);
	iocx__cond_init(&e->cv);
	return e;
}

void peer_event_set(peer_event *e)
{
	iocx__mutex_lock(&e->lock);
	e->set = true;
	iocx__cond_broadcast(&e->cv);
	iocx__mutex_unlock(&e->lock);
}

bool peer_event_wait(peer_event *e, unsigned timeout_ms)
{
	uint64_t deadline = peer_now_ms() + timeout_ms, now;
	bool set;

	iocx__mutex_lock(&e->lock);
	while (!e->set && (now = peer_now_ms()) < deadline)
		iocx__cond_timedwait(&e->cv, &e->lock,
				     (unsigned)(deadline - now));
	set = e->set;
	iocx__mutex_unlock(&e->lock);
	return set;
}

void peer_event_free(peer_event *e)
{
	if (e == NULL)
		return;
	iocx__cond_destroy(&e->cv);
	iocx__mutex_destroy(&e->lock);
	free(e);
}

struct peer_thread {
	pthread_t t;
	void (*fn)(void *);
	void *arg;
	peer_event *done;
};

static void *thread_main(void *p)
{
	struct peer_thread *t = p;

	t->fn(t->arg);
	peer_event_set(t->done);
	return NULL;
}

peer_thread peer_thread_start(void (*fn)(void *), void *arg)
{
	struct peer_thread *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->done = peer_event_new();
	if (t->done == NULL || pthread_create(&t->t, NULL, thread_main, t)) {
		peer_event_free(t->done);
		free(t);
		return NULL;
	}
	return t;
}

bool peer_thread_join(peer_thread t, unsigned timeout_ms)
{
	/* The function has returned: the join is immediate. */
	if (!peer_event_wait(t->done, timeout_ms))
		return false;
	pthread_join(t->t, NULL);
	peer_event_free(t->done);
	free(t);
	return true;
}

void peer_yield(void)
{
	sched_yield();
}

unsigned peer_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	return (unsigned)CPU_COUNT(&set);
}

void *peer__block_alloc(size_t size)
{
	return malloc(size);
}

void peer__block_free(void *ptr)
{
	free(ptr);
}

/* ---- sockets ---------------------------------------------------------- */

void peer__set_nonblocking(SOCKET s)
{
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
}

/* Sockets one peer__poll call watches at most. */
#define POLL_MAX 2048

int peer__poll(const SOCKET *socks, const bool *write, bool *ready,
	       size_t n, unsigned ms)
{
	struct pollfd pfd[POLL_MAX];
	size_t i;

	if (n > POLL_MAX)
		n = POLL_MAX;
	for (i = 0; i < n; i++) {
		pfd[i].fd = socks[i];		/* negative: skipped */
		pfd[i].events = write[i] ? POLLOUT : POLLIN;
		pfd[i].revents = 0;
	}
	if (poll(pfd, n, (int)ms) < 0)
		return errno == EINTR ? 0 : errno;
	/* A failed connect is not "writable" (select() agrees). */
	for (i = 0; i < n; i++)
		ready[i] = socks[i] >= 0 &&
			   (write[i] ? (pfd[i].revents & POLLOUT) &&
					       !(pfd[i].revents & POLLERR)
				     : pfd[i].revents != 0);
	return 0;
}

/* ---- process ---------------------------------------------------------- */

static const char *backend = "?";
static unsigned watchdog_seconds;

static void watchdog(int sig)
{
	static const char msg[] =
		"watchdog: test binary still running, terminating\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(124);
	_exit(124);
}

/* Why io_uring cannot run here, for the skip message. */
static void explain_no_uring(void)
{
	char buf[16] = "";
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	long rc;
	struct {
		uint32_t sq_entries, cq_entries, flags, sq_thread_cpu;
		uint32_t sq_thread_idle, features, wq_fd, resv[3];
		uint64_t offsets[10];
	} params;

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
		buf[strcspn(buf, "\n")] = 0;
	}
	memset(&params, 0, sizeof(params));
	rc = syscall(__NR_io_uring_setup, 1, &params);
	printf("io_uring unavailable: io_uring_setup %s, "
	       "kernel.io_uring_disabled=%s\n",
	       rc < 0 ? strerror(errno) : "works (a needed feature lacks)",
	       buf[0] ? buf : "(absent)");
	if (rc >= 0)
		close((int)rc);
}

/* Which backend IOCX_BACKEND (or auto) gives; exit 77 if none can run. */
static void pick_backend(void)
{
	struct iocx_engine_options o;
	const char *want = getenv("IOCX_BACKEND");
	iocx_engine *e;
	int rc;

	iocx_engine_options_init(&o);
	o.workers = 1;
	rc = iocx_engine_create(&o, &e);
	if (rc == IOCX_E_NOTSUP) {
		printf("backend %s cannot run on this machine\n",
		       want ? want : "auto");
		if (want && strcmp(want, "io_uring") == 0)
			explain_no_uring();
		printf("SKIP: every test of this binary\n");
		exit(77);
	}
	if (rc != IOCX_OK) {
		fprintf(stderr, "probe engine: %s\n", iocx_error_name(rc));
		exit(1);
	}
	backend = iocx_engine_backend(e);	/* a static string */
	iocx_engine_destroy(e);
}

void peer_init(unsigned watchdog_s)
{
	struct rlimit rl;
	int rc;

	peer__init_common();
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* test_cancel holds 1,000 sockets at once. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rc = iocx_set_allocator(peer_test_alloc, peer_test_free);
	if (rc != IOCX_OK) {
		fprintf(stderr, "iocx_set_allocator: %s\n",
			iocx_error_name(rc));
		exit(1);
	}
	pick_backend();
	watchdog_seconds = watchdog_s;
	signal(SIGALRM, watchdog);
	alarm(watchdog_seconds);
	printf("running on the %s backend\n", backend);
}

const char *peer_backend(void)
{
	return backend;
}

bool peer_connect_fails_async(void)
{
	return strcmp(backend, "io_uring") == 0;
}

bool peer_is_wine(void)
{
	return false;
}

const char *peer_wine_version(void)
{
	return "";
}

unsigned peer_handle_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1;	/* the directory's own descriptor */
}

static struct rlimit nofile_saved;

bool peer_handles_limit(unsigned extra)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &nofile_saved) != 0)
		return false;
	rl = nofile_saved;
	rl.rlim_cur = peer_handle_count() + extra;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

void peer_handles_unlimit(void)
{
	setrlimit(RLIMIT_NOFILE, &nofile_saved);
}

/* Not with PEER_PUBLIC_API: see the end of peer.c. */
#ifndef PEER_PUBLIC_API
/* ---- syscall recorder and faults -------------------------------------- */

static struct iocx_linux_sys sys_real;
static int can_inject = -1;	/* io_uring NOP result injection works */

static int w_socket(int domain, int type, int protocol)
{
	int err = peer__fault(&peer_faults.socket_err);
	int fd;

	if (err != 0) {
		peer__sys_record(SYS_SOCKET, INVALID_SOCKET, domain, type, 0, 0,
				 err);
		errno = err;
		return -1;
	}
	fd = sys_real.socket(domain, type, protocol);
	err = fd < 0 ? errno : 0;
	peer__sys_record(SYS_SOCKET, fd, domain, type, 0, fd >= 0, err);
	errno = err;
	return fd;
}

static int w_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int err = peer__bind_fault(addr);
	int rc;

	if (err != 0) {
		peer__sys_record(SYS_BIND, fd, 0, 0, 0, 0, err);
		errno = err;
		return -1;
	}
	rc = sys_real.bind(fd, addr, len);
	err = rc != 0 ? errno : 0;
	peer__sys_record(SYS_BIND, fd, 0, 0, 0, rc == 0, err);
	errno = err;
	return rc;
}

static int w_setsockopt(int fd, int level, int name, const void *val,
			socklen_t len)
{
	int rc = sys_real.setsockopt(fd, level, name, val, len);
	int err = rc != 0 ? errno : 0;

	peer__sys_record(SYS_SETSOCKOPT, fd, level, name, 0, rc == 0, err);
	errno = err;
	return rc;
}

static int w_close(int fd)
{
	int rc = sys_real.close(fd);
	int err = rc != 0 ? errno : 0;

	peer__sys_record(SYS_CLOSESOCKET, fd, 0, 0, 0, rc == 0, err);
	errno = err;
	return rc;
}

static int w_shutdown(int fd, int how)
{
	int err = peer__fault(&peer_faults.shutdown_err);
	int rc;

	if (err != 0) {
		peer__sys_record(SYS_SHUTDOWN, fd, how, 0, 0, 0, err);
		errno = err;
		return -1;
	}
	rc = sys_real.shutdown(fd, how);
	err = rc != 0 ? errno : 0;
	peer__sys_record(SYS_SHUTDOWN, fd, how, 0, 0, rc == 0, err);
	errno = err;
	return rc;
}

static int w_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int err = peer__fault(&peer_faults.connect_err);
	size_t i;
	int rc;

	if (err != 0) {
		peer__sys_record(SYS_CONNECT, fd, 0, 0, 0, 0, err);
		errno = err;
		return -1;
	}
	i = peer__sys_record(SYS_CONNECT, fd, 0, 0, 0, 1, 0);
	rc = sys_real.connect(fd, addr, len);
	err = rc != 0 ? errno : 0;
	if (rc != 0 && err != EINPROGRESS)
		peer__sys_failed(i, err);
	errno = err;
	return rc;
}

static ssize_t w_send(int fd, const void *buf, size_t len, int flags)
{
	int err = peer__send_fault();
	unsigned max = atomic_load(&peer_faults.send_max);
	ssize_t n;
	size_t i;

	if (err != 0) {
		peer__sys_record(SYS_SEND, fd, 0, 0, len, 0, err);
		errno = err;
		return -1;
	}
	if (max != 0 && len > max) {
		/* Offer at most max bytes: the kernel then takes a part. */
		atomic_fetch_add(&peer_faults.fired, 1);
		len = max;
	}
	i = peer__sys_record(SYS_SEND, fd, 0, 0, len, 1, 0);
	n = sys_real.send(fd, buf, len, flags);
	err = n < 0 ? errno : 0;
	if (n < 0)
		peer__sys_failed(i, err);
	errno = err;
	return n;
}

/*
 * A recv() that would block passes: the operation then waits for
 * readiness.  The first one that returns something fails instead when
 * recv_err is armed, and what it read is dropped (peer.h).
 */
static ssize_t w_recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = sys_real.recv(fd, buf, len, flags);
	int err = n < 0 ? errno : 0;
	bool waits = n < 0 && (err == EAGAIN || err == EWOULDBLOCK);
	int fault = waits ? 0 : peer__fault(&peer_faults.recv_err);

	if (fault != 0) {
		n = -1;
		err = fault;
	}
	peer__sys_record(SYS_RECV, fd, 0, 0, len, n >= 0 || waits,
			 waits ? 0 : err);
	errno = err;
	return n;
}

static int w_epoll_create1(int flags)
{
	int err = peer__fault(&peer_faults.port_err);

	if (err != 0) {
		errno = err;
		return -1;
	}
	return sys_real.epoll_create1(flags);
}

/* ADD is the socket joining the set, DEL a cancel; MOD is not logged. */
static int w_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int err = op == EPOLL_CTL_ADD
			  ? peer__fault(&peer_faults.associate_err)
			  : 0;
	enum peer_sys_kind kind = op == EPOLL_CTL_ADD ? SYS_ASSOCIATE
						      : SYS_CANCEL;
	int rc;

	if (err != 0) {
		peer__sys_record(kind, fd, 0, 0, 0, 0, err);
		errno = err;
		return -1;
	}
	rc = sys_real.epoll_ctl(epfd, op, fd, ev);
	err = rc != 0 ? errno : 0;
	if (op != EPOLL_CTL_MOD)
		peer__sys_record(kind, fd, 0, 0, 0, rc == 0, err);
	errno = err;
	return rc;
}

static int w_uring_init(unsigned entries, struct io_uring *ring,
			struct io_uring_params *p)
{
	int err = peer__fault(&peer_faults.port_err);

	if (err != 0)
		return -err;
	return sys_real.uring_init(entries, ring, p);
}

/* Replace an operation by a NOP that completes with -err. */
static void prep_injected(struct io_uring_sqe *sqe, int err)
{
	io_uring_prep_nop(sqe);
	sqe->rw_flags = 1;		/* IORING_NOP_INJECT_RESULT */
	sqe->len = (uint32_t)-err;
}

static void w_prep_connect(struct io_uring_sqe *sqe, int fd,
			   const struct sockaddr *addr, socklen_t len)
{
	int err = peer__fault(&peer_faults.connect_err);

	if (err != 0) {
		peer__sys_record(SYS_CONNECT, fd, 0, 0, 0, 0, err);
		prep_injected(sqe, err);
		return;
	}
	peer__sys_record(SYS_CONNECT, fd, 0, 0, 0, 1, 0);
	sys_real.uring_prep_connect(sqe, fd, addr, len);
}

static void w_prep_send(struct io_uring_sqe *sqe, int fd, const void *buf,
			size_t len, int flags)
{
	int err = peer__send_fault();
	unsigned max = atomic_load(&peer_faults.send_max);

	if (err != 0) {
		peer__sys_record(SYS_SEND, fd, 0, 0, len, 0, err);
		prep_injected(sqe, err);
		return;
	}
	if (max != 0 && len > max) {
		atomic_fetch_add(&peer_faults.fired, 1);
		len = max;
	}
	peer__sys_record(SYS_SEND, fd, 0, 0, len, 1, 0);
	sys_real.uring_prep_send(sqe, fd, buf, len, flags);
}

static void w_prep_recv(struct io_uring_sqe *sqe, int fd, void *buf,
			size_t len, int flags)
{
	int err = peer__fault(&peer_faults.recv_err);

	if (err != 0) {
		peer__sys_record(SYS_RECV, fd, 0, 0, len, 0, err);
		prep_injected(sqe, err);
		return;
	}
	peer__sys_record(SYS_RECV, fd, 0, 0, len, 1, 0);
	sys_real.uring_prep_recv(sqe, fd, buf, len, flags);
}

static void w_prep_cancel(struct io_uring_sqe *sqe, int fd,
			  uint64_t user_data)
{
	int err = peer__fault(&peer_faults.cancel_err);

	if (err != 0) {
		peer__sys_record(SYS_CANCEL, fd, 0, 0, 0, 0, err);
		prep_injected(sqe, err);
		return;
	}
	peer__sys_record(SYS_CANCEL, fd, 0, 0, 0, 1, 0);
	sys_real.uring_prep_cancel(sqe, fd, user_data);
}

/* Batched closes are recorded when queued; the ring runs them later. */
static void w_prep_reset(struct io_uring_sqe *sqe, int fd)
{
	if (peer__fault(&peer_faults.reset_reject) != 0) {
		peer__sys_record(SYS_RESET, fd, 0, 0, 0, 0, EINVAL);
		io_uring_prep_nop(sqe);
		sqe->opcode = 0xff;	/* no such operation */
		return;
	}
	peer__sys_record(SYS_RESET, fd, 0, 0, 0, 1, 0);
	sys_real.uring_prep_reset(sqe, fd);
}

static void w_prep_close(struct io_uring_sqe *sqe, int fd)
{
	int err = peer__fault(&peer_faults.close_err);

	if (err != 0) {
		peer__sys_record(SYS_CLOSESOCKET, fd, 0, 0, 0, 0, err);
		prep_injected(sqe, err);
		return;
	}
	peer__sys_record(SYS_CLOSESOCKET, fd, 0, 0, 0, 1, 0);
	sys_real.uring_prep_close(sqe, fd);
}

/* Whether this kernel runs IORING_NOP_INJECT_RESULT (Linux 6.10?). */
static bool probe_inject(void)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	bool ok = false;

	if (io_uring_queue_init(2, &ring, 0) != 0)
		return false;
	sqe = io_uring_get_sqe(&ring);
	prep_injected(sqe, EPERM);
	if (io_uring_submit_and_wait(&ring, 1) == 1 &&
	    io_uring_peek_cqe(&ring, &cqe) == 0)
		ok = cqe->res == -EPERM;
	io_uring_queue_exit(&ring);
	return ok;
}

bool peer_sys_can_inject(void)
{
	if (strcmp(backend, "io_uring") != 0)
		return true;
	if (can_inject < 0)
		can_inject = probe_inject();
	return can_inject;
}

void peer_sys_install(void)
{
	iocx__linux_sys_reset();
	sys_real = iocx__linux_sys;
	peer_sys_clear();
	peer__faults_clear();
	iocx__linux_sys.socket = w_socket;
	iocx__linux_sys.bind = w_bind;
	iocx__linux_sys.setsockopt = w_setsockopt;
	iocx__linux_sys.close = w_close;
	iocx__linux_sys.shutdown = w_shutdown;
	iocx__linux_sys.connect = w_connect;
	iocx__linux_sys.send = w_send;
	iocx__linux_sys.recv = w_recv;
	iocx__linux_sys.epoll_create1 = w_epoll_create1;
	iocx__linux_sys.epoll_ctl = w_epoll_ctl;
	iocx__linux_sys.uring_init = w_uring_init;
	iocx__linux_sys.uring_prep_connect = w_prep_connect;
	iocx__linux_sys.uring_prep_send = w_prep_send;
	iocx__linux_sys.uring_prep_recv = w_prep_recv;
	iocx__linux_sys.uring_prep_cancel = w_prep_cancel;
	iocx__linux_sys.uring_prep_reset = w_prep_reset;
	iocx__linux_sys.uring_prep_close = w_prep_close;
}

void peer_sys_uninstall(void)
{
	iocx__linux_sys_reset();
}
#endif /* PEER_PUBLIC_API */
