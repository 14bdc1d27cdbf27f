/*
 * Helpers of the net tests: loopback listeners ("peers") served by their
 * own threads, a callback recorder, a leak-checking allocator, a recorder
 * and fault injector on the backend's syscall table, and the process-level
 * bits (Wine detection, handle counting, a watchdog).
 *
 * The same test sources run on Windows (under Wine) and natively on Linux
 * on both Linux backends.  peer.c is portable; peer_win.c and
 * peer_linux.c hold the per-OS parts: the thread and event shims
 * declared below, the process bits and the syscall recorder (on
 * iocx__win_sys or iocx__linux_sys).  Locks, condition variables and the
 * nanosecond clock are the library's own (src/platform.h).  A few names
 * keep their Windows spelling on Linux (SOCKET, INVALID_SOCKET,
 * closesocket) so the tests read the same on both.
 *
 * Threading rules: engine callbacks run on worker threads, where a cmocka
 * assert would longjmp across threads.  So the recorder callbacks only
 * record (atomics and one lock per tracker) and count contract violations;
 * every assert runs on the test's main thread, after a bounded wait on a
 * condition variable.  Nothing here sleeps to synchronise: every wait has a
 * deadline and reports whether it was met.
 */
#ifndef IOCX_TESTS_NET_PEER_H
#define IOCX_TESTS_NET_PEER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "iocx.h"
#include "platform.h"

/* ---- portability ------------------------------------------------------ */

#ifdef _WIN32
typedef DWORD peer_tid;
typedef int peer_socklen_t;

/* A socket error of the last failed call, and the values tests expect. */
#define peer_sock_errno() WSAGetLastError()
#define PEER_EWOULDBLOCK WSAEWOULDBLOCK
#define PEER_ECONNRESET WSAECONNRESET
#define PEER_ENOTCONN WSAENOTCONN
#define PEER_ENOBUFS WSAENOBUFS
#define PEER_EADDRINUSE WSAEADDRINUSE
#define PEER_EMFILE WSAEMFILE
#define PEER_ENETUNREACH WSAENETUNREACH
/* How bind(port 0) reports that the address ran out of ephemeral ports. */
#define PEER_EPORTS WSAENOBUFS
#define PEER_ETIMEDOUT WSAETIMEDOUT

/* mingw-w64 headers lack it; the value Windows uses (IPPROTO_TCP level). */
#ifndef TCP_FASTOPEN
#define TCP_FASTOPEN 15
#endif
/* The option the backend sets for IOCX_CONNECT_FASTOPEN. */
#define PEER_TCP_FASTOPEN_OPT TCP_FASTOPEN

/* NTSTATUS of a refused / cancelled connect, as in result.os_code. */
#define PEER_STATUS_CONNECTION_REFUSED 0xC0000236u
#define PEER_STATUS_CANCELLED 0xC0000120u
#else
typedef int SOCKET;
#define INVALID_SOCKET (-1)
#define closesocket(s) close(s)
typedef long peer_tid;
typedef socklen_t peer_socklen_t;

#define peer_sock_errno() errno
#define PEER_EWOULDBLOCK EAGAIN
#define PEER_ECONNRESET ECONNRESET
#define PEER_ENOTCONN ENOTCONN
#define PEER_ENOBUFS ENOBUFS
#define PEER_EADDRINUSE EADDRINUSE
#define PEER_EMFILE EMFILE
#define PEER_ENETUNREACH ENETUNREACH
#define PEER_EPORTS EADDRINUSE
#define PEER_ETIMEDOUT ETIMEDOUT

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif
#define PEER_TCP_FASTOPEN_OPT TCP_FASTOPEN_CONNECT

/* errno of a refused / cancelled connect, as in result.os_code. */
#define PEER_STATUS_CONNECTION_REFUSED ECONNREFUSED
#define PEER_STATUS_CANCELLED ECANCELED
#endif

/* The calling thread's id, comparable between threads. */
peer_tid peer_thread_id(void);

/* Start fn(arg) on a thread; NULL when it could not be started. */
typedef struct peer_thread *peer_thread;
peer_thread peer_thread_start(void (*fn)(void *), void *arg);
/*
 * Wait at most timeout_ms for t to end, then release it; false when it
 * did not end in time (it is then left running, and not released).
 */
bool peer_thread_join(peer_thread t, unsigned timeout_ms);

/* A manual-reset event: set once, every wait then returns true. */
typedef struct peer_event peer_event;
peer_event *peer_event_new(void);
void peer_event_set(peer_event *e);
bool peer_event_wait(peer_event *e, unsigned timeout_ms);
void peer_event_free(peer_event *e);

/* The engine's monotonic clock (iocx__now_ns) in milliseconds, and "let
 * another thread run". */
uint64_t peer_now_ms(void);
void peer_yield(void);

/* Number of CPUs this process may run on (0 if unknown). */
unsigned peer_cpus(void);

/* Bounded wait for one loopback completion (they arrive in ms). */
#define PEER_TIMEOUT_MS 5000
/* Bounded wait where a SYN retransmission (1 s, then 3 s) is involved. */
#define PEER_SLOW_TIMEOUT_MS 10000

/* ---- process ---------------------------------------------------------- */

/*
 * Start Winsock, route the library allocator to the leak-checking test
 * allocator and arm a watchdog that ends the process with exit code 124
 * after watchdog_s seconds (a hung test must not hang CI).  Call first in
 * main(), before any engine exists.
 *
 * On Linux the backend under test comes from IOCX_BACKEND (meson runs
 * every net test once per backend); when it cannot run on this machine
 * (io_uring disabled or filtered) the process exits 77, meson's "skip",
 * after saying why.  The soft descriptor limit is raised to the hard one.
 */
void peer_init(unsigned watchdog_s);

/* The backend the tests run on ("iocp", "io_uring", "epoll"). */
const char *peer_backend(void);

/*
 * True when a connect the kernel refuses at once reaches on_connect
 * instead of being returned by iocx_connect (io_uring issues connects on
 * the owner worker, see src/linux/uring.c).
 */
bool peer_connect_fails_async(void);

/* True when running under Wine (ntdll exports wine_get_version). */
bool peer_is_wine(void);

/* Wine's version string, or "" elsewhere. */
const char *peer_wine_version(void);

/*
 * Number of handles the process holds.  GetProcessHandleCount on Windows;
 * Wine 8 stubs it (TRUE with 0), so there the handle table is walked with
 * GetHandleInformation, which is exact for that purpose.  On Linux: the
 * open file descriptors (entries of /proc/self/fd).
 */
unsigned peer_handle_count(void);

/*
 * Lower the process's limit on open descriptors to what it holds now plus
 * extra (Linux: the soft RLIMIT_NOFILE); peer_handles_unlimit() puts the
 * limit back.  False where there is no such limit to lower (Windows: a
 * process's socket handles are bounded by the system's memory only).
 */
bool peer_handles_limit(unsigned extra);
void peer_handles_unlimit(void);

/* ---- allocator -------------------------------------------------------- */

/* The allocator peer_init() installs (for iocx_set_allocator tests). */
void *peer_test_alloc(size_t size);
void peer_test_free(void *ptr);

/* Blocks the library currently holds from the test allocator. */
long peer_alloc_live(void);

/* Wait until the library holds exactly target blocks; false on timeout. */
bool peer_alloc_wait_live(long target, unsigned timeout_ms);

/*
 * Make the nth library allocation from now fail (1 = the next one);
 * 0 disarms.  Returns nothing; peer_alloc_failures() counts injections.
 */
void peer_alloc_fail_nth(long n);
long peer_alloc_failures(void);

/* ---- addresses -------------------------------------------------------- */

/* Fill *ss with ip:port (numeric IPv4 or IPv6 text); returns the length. */
int peer_addr(struct sockaddr_storage *ss, int family, const char *ip,
	      uint16_t port);

/* The port of an AF_INET or AF_INET6 address, host order. */
uint16_t peer_addr_port(const struct sockaddr *sa);

/* Numeric text of an address without the port, into buf. */
const char *peer_addr_ip(const struct sockaddr *sa, char *buf, size_t len);

/*
 * A port on ip with nothing listening, outside the OS's ephemeral range
 * (peer.c says why): one a socket could bind, then closed.  Connects to
 * it are refused; 0 if none was found.
 */
uint16_t peer_free_port(int family, const char *ip);

/* True when an IPv6 socket can be bound to ::1. */
bool peer_ipv6_available(void);

/*
 * Handles a finished test may hold above its start without any leak: a
 * few system objects created lazily on first use, plus sockets a peer
 * thread has accepted and not yet closed when the count is taken.  A leak
 * per connection or per thread would show as hundreds or thousands.
 */
#define PEER_HANDLE_SLACK 8

/* ---- callback recorder ------------------------------------------------ */

/* Aggregate counters over every record that points at this tracker. */
struct peer_tracker {
	iocx_mutex lock;
	iocx_cond cv;
	long connects;			/* on_connect calls */
	long closes;			/* on_close calls */
	long violations;		/* contract breaks, see peer_rec */
	long status[IOCX_ERROR_COUNT];	/* on_connect by -status */
	long reason_ok;			/* on_close(IOCX_OK) */
	long reason_shutdown;		/* on_close(IOCX_E_SHUTDOWN) */
	long reason_other;		/* any other on_close reason */
	peer_tid main_thread;		/* callbacks must never run on it */
	char first_violation[160];	/* text of the first one seen */
};

struct peer_rec;
typedef void (*peer_connect_hook)(struct peer_rec *r, iocx_conn *conn,
				  const struct iocx_connect_result *res);
typedef void (*peer_close_hook)(struct peer_rec *r, iocx_conn *conn,
				int reason);

/*
 * One connection's record; the request's user pointer.  A violation is:
 * a second on_connect or on_close, on_close before on_connect, two
 * callbacks of the connection at once, a callback on the main thread, a
 * conn pointer or iocx_conn_user() that does not match.
 */
struct peer_rec {
	struct peer_tracker *trk;
	atomic_int connects;
	atomic_int closes;
	atomic_int in_callback;
	/* Copied from the on_connect result. */
	int status;
	uint32_t os_code;
	size_t payload_sent;
	uint64_t latency_ns;
	bool fastopen;
	/* on_close reason. */
	int reason;
	/* peer_seq() values taken when each callback started. */
	long connect_seq;
	long close_seq;
	iocx_conn *conn;		/* as passed to on_connect */
	/* Optional, run on the worker after recording, before counting. */
	peer_connect_hook on_connect_hook;
	peer_close_hook on_close_hook;
	void *ctx;			/* for the hooks */
	int hook_rc[4];			/* for the hooks' results */
};

/* Initialise a tracker; the calling thread is the "main" thread. */
void peer_tracker_init(struct peer_tracker *t);

/* Zero n records and point them at t. */
void peer_recs_init(struct peer_rec *r, size_t n, struct peer_tracker *t);

/* An on_connect_hook: iocx_close(conn, IOCX_CLOSE_GRACEFUL) from inside
 * the callback, its result in hook_rc[0]. */
void peer_hook_close(struct peer_rec *r, iocx_conn *conn,
		     const struct iocx_connect_result *res);

/* The recorder callbacks: user must be a struct peer_rec. */
void peer_on_connect(iocx_conn *conn, const struct iocx_connect_result *res,
		     void *user);
void peer_on_close(iocx_conn *conn, int reason, void *user);

/*
 * Wait until the tracker counted at least connects on_connect and closes
 * on_close calls; false on timeout.
 */
bool peer_wait(struct peer_tracker *t, long connects, long closes,
	       unsigned timeout_ms);

/* Snapshot of the tracker's counters, taken under its lock. */
void peer_tracker_snapshot(struct peer_tracker *t, struct peer_tracker *out);

/* A request to remote with the recorder callbacks and user = r. */
void peer_req(struct iocx_connect_request *req,
	      const struct sockaddr_storage *remote, int remote_len,
	      struct peer_rec *r);

/* A request to host:port (by name) with the recorder callbacks, user r. */
void peer_req_host(struct iocx_connect_request *req, const char *host,
		   uint16_t port, struct peer_rec *r);

/*
 * Main-thread assertions (cmocka): the tracker saw no contract violation;
 * the tracker reaches connects/closes within timeout_ms; the library
 * gives back every block down to live0 within PEER_TIMEOUT_MS.
 */
void peer_assert_clean(struct peer_tracker *t);
void peer_assert_wait(struct peer_tracker *t, long connects, long closes,
		      unsigned timeout_ms);
void peer_assert_no_leak(long live0);

/* A global, increasing sequence number to order events across threads. */
long peer_seq(void);

/* ---- listeners -------------------------------------------------------- */

enum peer_mode {
	PEER_CLOSE,		/* accept and close at once (counts only) */
	PEER_READ,		/* accept, read everything until EOF */
};

/* One connection a PEER_READ listener accepted. */
struct peer_accepted {
	SOCKET s;			/* INVALID_SOCKET once closed */
	struct sockaddr_storage addr;	/* the client's address */
	int addr_len;
	unsigned char *data;		/* bytes received */
	size_t len;
	size_t cap;
	bool eof;			/* FIN (or an error) seen */
	int error;			/* socket error that ended it, 0 for
					   FIN */
};

struct peer {
	SOCKET ls;
	int family;
	struct sockaddr_storage addr;	/* where it listens */
	int addr_len;
	uint16_t port;
	enum peer_mode mode;
	peer_thread thread;
	atomic_bool stop;
	iocx_mutex lock;
	iocx_cond cv;
	long accepted;
	int thread_error;		/* socket error that stopped it */
	struct peer_accepted *conns;	/* PEER_READ only */
	size_t nconns;
	size_t conns_cap;
	SOCKET fillers[4];		/* peer_listen_full only */
	int nfillers;
};

/*
 * Listen on ip:0 of family with a big backlog and serve it from a thread
 * in mode.  Returns NULL when the address cannot be bound.
 */
struct peer *peer_listen(int family, const char *ip, enum peer_mode mode);
/* The same on a given port (0 = any); NULL when it is taken. */
struct peer *peer_listen_port(int family, const char *ip, uint16_t port,
			      enum peer_mode mode);

/*
 * Listen on ip:0 with backlog 1, accept nothing, and fill the accept
 * queue with client connections: the kernel then drops further SYNs, so
 * connects to it stay pending (docs/windows.md, "A pending connect on
 * loopback").  Linux (so Wine) only:
 * per Microsoft's listen() documentation Windows answers a full queue
 * with a refusal, so on real Windows these connects would report
 * IOCX_E_REFUSED and the pending-connect tests need another technique.
 */
struct peer *peer_listen_full(int family, const char *ip);
/* The same on a given port (0 = any); NULL when it is taken. */
struct peer *peer_listen_full_port(int family, const char *ip,
				   uint16_t port);

/*
 * Two listeners on one port: *p4 on 127.0.0.1 reading (PEER_READ) and
 * *p6 on ::1, full (a black hole: peer_listen_full) or reading too.  A
 * port already taken on ::1 is tried again with another (bounded); false
 * when no pair could be made.
 */
bool peer_listen_pair(struct peer **p4, struct peer **p6, bool v6_full);

/* Start serving a full listener in mode, which drains its queue. */
void peer_serve(struct peer *p, enum peer_mode mode);

/* Wait until n connections were accepted; false on timeout. */
bool peer_wait_accepted(struct peer *p, long n, unsigned timeout_ms);

/* Wait until accepted connection idx saw EOF; false on timeout. */
bool peer_wait_eof(struct peer *p, size_t idx, unsigned timeout_ms);

/* Wait until accepted connection idx received n bytes; false on timeout. */
bool peer_wait_bytes(struct peer *p, size_t idx, size_t n,
		     unsigned timeout_ms);

/* Stop the thread, close every socket, free p (NULL is fine). */
void peer_close(struct peer *p);

/* ---- a port that flips ------------------------------------------------ */

/*
 * A loopback port that flips every period_ms between refusing (a socket
 * bound to it, not listening: the kernel answers a SYN with a reset) and
 * a listener with a full backlog (backlog 1 plus two filler connections:
 * SYNs are dropped, so connects stay pending).  The flipping thread
 * closes the listener, which resets what it queued, and binds the port
 * again (SO_REUSEADDR).  Starts refusing.  On real Windows a full backlog
 * refuses too (see peer_listen_full), so there the port always refuses.
 */
struct peer_flip {
	struct sockaddr_storage addr;	/* the port */
	int addr_len;
	unsigned period_ms;
	peer_thread thread;
	peer_event *stop;
	SOCKET s;			/* bound; listening when full */
	SOCKET fillers[2];
	bool listening;
	atomic_long flips;		/* phases started after the first */
	atomic_int error;		/* socket error that stopped it */
};

/* Start flipping a port on ip (numeric IPv4 or IPv6); NULL on failure. */
struct peer_flip *peer_flip_start(int family, const char *ip,
				  unsigned period_ms);

/* Stop the thread, close every socket, free f (NULL is fine). */
void peer_flip_stop(struct peer_flip *f);

/* ---- echo listener and raw sockets (data tests) ----------------------- */

/* Connections one echo listener serves at most (select() / poll() bound). */
#define PEER_ECHO_MAX_CONNS 512

struct peer_echo_conn;

/*
 * A loopback listener whose thread echoes every byte of each accepted
 * connection back, in order, until that connection's EOF; then it sends
 * what is left, shuts its sending side down (FIN) and closes the socket.
 * It reads a chunk only once the previous one went back out, so a client
 * that stops reading stalls its own connection and no other.
 */
struct peer_echo {
	SOCKET ls;
	struct sockaddr_storage addr;	/* where it listens */
	int addr_len;
	peer_thread thread;
	atomic_bool stop;
	iocx_mutex lock;
	iocx_cond cv;
	long accepted;
	long done;			/* EOF seen, all echoed, FIN sent */
	long errors;			/* connections ended by an error */
	int first_error;		/* socket error of the first of them */
	long long echoed;		/* bytes sent back in total */
	int thread_error;		/* socket error that stopped it */
	struct peer_echo_conn *conns;	/* owned by the thread */
	size_t nconns;
};

/* Listen on ip:0 and start echoing; NULL when it cannot. */
struct peer_echo *peer_echo_listen(int family, const char *ip);

/* Wait until n connections finished (see done); false on timeout. */
bool peer_echo_wait_done(struct peer_echo *p, long n, unsigned timeout_ms);

/* Snapshot of accepted, done, errors and echoed, under the lock. */
void peer_echo_counts(struct peer_echo *p, long *accepted, long *done,
		      long *errors, long long *echoed);

/* Stop the thread, close every socket, free p (NULL is fine). */
void peer_echo_close(struct peer_echo *p);

/*
 * A blocking listener on ip:0 that nobody serves: the test accepts from
 * it with peer_raw_accept() and drives each connection itself (or leaves
 * it unread, so that sends to it stall).  *addr and *len get its address.
 * INVALID_SOCKET when it cannot be created.
 */
SOCKET peer_raw_listen(int family, const char *ip,
		       struct sockaddr_storage *addr, int *len);

/* Accept one connection within timeout_ms (blocking socket), or
 * INVALID_SOCKET. */
SOCKET peer_raw_accept(SOCKET ls, unsigned timeout_ms);

/*
 * Read from s into buf until n bytes arrived, EOF, an error or
 * timeout_ms passed.  Returns the bytes read; *err gets 0 when n bytes
 * arrived or at EOF (fewer bytes), the socket error that ended it, or
 * PEER_ETIMEDOUT.  With n == 0 it reads (and drops) everything until EOF or
 * an error; buf may then be NULL.
 */
size_t peer_raw_recv(SOCKET s, void *buf, size_t n, unsigned timeout_ms,
		     int *err);

/* Close s abortively: SO_LINGER {1, 0}, then closesocket (peer sees RST). */
void peer_raw_reset(SOCKET s);

/* ---- syscall recorder and faults -------------------------------------- */

/*
 * What the backends call, per OS.  Windows: the iocx__win_sys entries.
 * Linux: socket, bind, setsockopt, close, shutdown; SYS_CONNECT is
 * connect() (epoll) or the IORING_OP_CONNECT it prepares (io_uring),
 * SYS_SEND likewise send() or IORING_OP_SEND, SYS_RECV recv() or
 * IORING_OP_RECV; SYS_ASSOCIATE is epoll's EPOLL_CTL_ADD, SYS_CANCEL
 * epoll's EPOLL_CTL_DEL of a cancelled socket or io_uring's ASYNC_CANCEL.
 */
enum peer_sys_kind {
	SYS_SOCKET,		/* s = the socket returned (INVALID_SOCKET
				   when it failed); level = family */
	SYS_BIND,
	SYS_SETSOCKOPT,		/* level, name */
	SYS_CLOSESOCKET,
	SYS_CONNECT,		/* ConnectEx: bytes = send-buffer length */
	SYS_SEND,		/* bytes = bytes offered */
	SYS_RECV,		/* WSARecv / recv / RECV: bytes = buffer
				   size; a recv() that would block is ok */
	SYS_SHUTDOWN,		/* FIN: level = how (SD_SEND, SHUT_WR) */
	SYS_ASSOCIATE,		/* socket joins the completion port / set */
	SYS_CANCEL,		/* the operation on the socket is cancelled */
	SYS_RESET,		/* io_uring, options.batch_closes: the reset
				   queued to the ring (IORING_OP_CONNECT to
				   AF_UNSPEC); its close is SYS_CLOSESOCKET */
};

struct peer_sys_event {
	enum peer_sys_kind kind;
	long seq;		/* peer_seq() at the call */
	SOCKET s;
	int level;
	int name;
	size_t bytes;
	int ok;			/* the call succeeded (or went pending) */
	int err;		/* WSA / Win32 error or errno when it failed */
};

/*
 * Faults to inject; 0 = off.  Set fields while the recorder is installed;
 * peer_sys_install() clears them.  The wrappers read them on worker
 * threads, hence atomics.  Error values are WSA / Win32 codes on Windows,
 * errno values on Linux.  An armed fault fails every matching call until
 * it is disarmed.  On io_uring a connect, send or receive fault replaces
 * the operation with a NOP whose completion carries -err
 * (IORING_NOP_INJECT_RESULT; see peer_sys_can_inject()), and so is a
 * cancel or batched close fault.
 *
 * recv_err fails the receive that would have completed: WSARecv and
 * IORING_OP_RECV are replaced as they are issued; on epoll a recv() that
 * would block passes (the operation waits for readiness) and the first one
 * that returns something (data, EOF or an error) fails instead, its bytes
 * dropped as if a reset had overtaken them.
 */
struct peer_faults {
	atomic_int socket_err;		/* socket creation fails with it */
	atomic_int bind_err;		/* bind fails with it */
	atomic_uint bind_err_ip;	/* ... only to this IPv4 address
					   (network order); 0 = any */
	atomic_int connect_err;		/* the connect fails at once */
	atomic_int associate_err;	/* joining the port / set fails */
	atomic_int port_err;		/* creating the port, epoll set or
					   ring itself fails */
	atomic_int update_ctx_err;	/* SO_UPDATE_CONNECT_CONTEXT fails
					   (Windows) */
	atomic_int send_err;		/* a send fails at once */
	atomic_uint send_skip;		/* ... after this many sends */
	atomic_uint send_max;		/* sends offer at most this */
	atomic_int recv_err;		/* a receive fails with it (above) */
	atomic_int shutdown_err;	/* shutdown (FIN) fails with it */
	atomic_int reset_reject;	/* io_uring batch_closes: the kernel
					   rejects the queued reset before
					   running it (an unknown opcode),
					   which cancels the linked close */
	atomic_int cancel_err;		/* io_uring: an ASYNC_CANCEL finds
					   nothing, completing with -err;
					   Windows: CancelIoEx fails with
					   it; the operation runs on */
	atomic_int close_err;		/* io_uring batch_closes: the
					   queued close fails with -err
					   without closing */
	atomic_int post_err;		/* Windows: PostQueuedCompletion-
					   Status fails (the Linux
					   backends' posts cannot) */
	atomic_int fired;		/* injections done */
};

extern struct peer_faults peer_faults;

/*
 * True when connect, send and receive faults can be injected on this
 * backend (always, except io_uring on a kernel without
 * IORING_NOP_INJECT_RESULT).  Other faults need no support.
 */
bool peer_sys_can_inject(void);

/*
 * Swap recording wrappers into the syscall table (before creating the engine,
 * as the table must not change under a running engine) and clear the log
 * and the faults.  peer_sys_uninstall() restores the real table.
 */
void peer_sys_install(void);
void peer_sys_uninstall(void);

/*
 * Forget the events logged so far (the engine's own start-up sockets,
 * for instance), keeping the wrappers and the armed faults.
 */
void peer_sys_clear(void);

/* Events logged so far, and the ith one (i < count). */
size_t peer_sys_count(void);
struct peer_sys_event peer_sys_event(size_t i);

/* The nth (0-based) socket wsa_socket returned, or INVALID_SOCKET. */
SOCKET peer_sys_socket(size_t nth);

/*
 * Number of logged events of kind on socket s (INVALID_SOCKET = any);
 * for SYS_SETSOCKOPT only those with level and name.  *first gets the
 * first match (may be NULL).
 */
size_t peer_sys_find(enum peer_sys_kind kind, SOCKET s, int level,
		     int name, struct peer_sys_event *first);

/* The last logged event of kind on socket s (all zero if none). */
struct peer_sys_event peer_sys_last(enum peer_sys_kind kind, SOCKET s);

/*
 * Wait until at least n events of kind on socket s (INVALID_SOCKET = any)
 * were logged; false on timeout.  Not for SYS_SETSOCKOPT.
 */
bool peer_sys_wait(enum peer_sys_kind kind, SOCKET s, size_t n,
		   unsigned timeout_ms);

/* The log overflowed (a test recorded more than it can hold). */
bool peer_sys_overflowed(void);

#endif /* IOCX_TESTS_NET_PEER_H */
