/*
 * iocx: an asynchronous TCP connection engine.
 *
 * One engine owns a small pool of worker threads and one completion port
 * (Windows IOCP; a native backend on Linux).  iocx_connect() starts a
 * connection, optionally carrying a first payload that leaves with the
 * handshake; the outcome arrives in callbacks on a worker thread.
 *
 * This header is the contract: every function's rules are written next to
 * it.  The rules that span functions (threads, callbacks, lifetime,
 * buffer ownership, the error model) are in docs/api.md; in short:
 *  - Callbacks run on engine worker threads, never inside the call that
 *    started the operation (except a first attempt's on_socket hook,
 *    which runs inside iocx_connect()).  Callbacks of one connection
 *    never run concurrently with each other.
 *  - Every iocx_connect() that returns IOCX_OK yields exactly one on_connect
 *    call and, later, exactly one on_close call; on_close is always the last
 *    callback of a connection.
 *  - The caller releases every connection exactly once, with iocx_close()
 *    (also after a failed connect, and after an on_close the engine
 *    started) or a successful iocx_detach().  The engine never frees a
 *    handle the program has not released: a handle is freed once its
 *    on_close has returned and it was released, or by
 *    iocx_engine_destroy(), which closes and frees whatever is left.
 *  - Calls that fail synchronously return a negative IOCX_E_* code, invoke
 *    no callback and change nothing.
 */
#ifndef IOCX_H
#define IOCX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef _WIN32
#include <winsock2.h>
#else
#include <sys/socket.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * IOCX_API marks every function of the library.  On Windows it is
 * dllexport while iocx.dll itself is built (IOCX_BUILDING_DLL),
 * dllimport for a program that uses the DLL (defines nothing), and
 * nothing for a program that links the static library (defines
 * IOCX_STATIC).  Elsewhere the library is built with hidden visibility
 * and IOCX_API makes these functions, and only these, visible.
 */
#if defined(_WIN32)
#if defined(IOCX_BUILDING_DLL)
#define IOCX_API __declspec(dllexport)
#elif defined(IOCX_STATIC)
#define IOCX_API
#else
#define IOCX_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define IOCX_API __attribute__((visibility("default")))
#else
#define IOCX_API
#endif

/*
 * Version of this header.  meson.build's project version is the one
 * source; a unit test (test_version) fails when these disagree with it.
 * ABI policy (docs/abi.md): a patch release changes no declaration; a
 * minor release may add functions, codes, flags and fields carved from a
 * struct's reserved tail, never moving, resizing or removing anything;
 * anything else is a new major version (and a new shared-library
 * soname), also while MAJOR is 0.  A declaration added after 0.2.0 says
 * "Since 0.3.0." (or later) in its comment; the others are in 0.2.0.
 * What changed between releases: docs/releases.md.
 */
#define IOCX_VERSION_MAJOR 0
#define IOCX_VERSION_MINOR 3
#define IOCX_VERSION_PATCH 0
#define IOCX_VERSION_STRING "0.3.0"
/* 0xMMmmpp: MAJOR, MINOR and PATCH in one comparable number. */
#define IOCX_VERSION_NUMBER \
	((IOCX_VERSION_MAJOR << 16) | (IOCX_VERSION_MINOR << 8) | \
	 IOCX_VERSION_PATCH)

/*
 * Version of the library actually linked (which, with a shared library or
 * DLL, may be newer than the header a program was built with):
 * IOCX_VERSION_NUMBER and IOCX_VERSION_STRING as the library saw them.
 */
IOCX_API unsigned iocx_version(void);
IOCX_API const char *iocx_version_string(void);

typedef struct iocx_engine iocx_engine;
typedef struct iocx_conn iocx_conn;

/*
 * The OS socket of a connection: a SOCKET on Windows, a file descriptor
 * elsewhere.  IOCX_INVALID_SOCKET is never a valid one.  Since 0.3.0.
 */
#ifdef _WIN32
typedef SOCKET iocx_socket_t;
#define IOCX_INVALID_SOCKET INVALID_SOCKET
#else
typedef int iocx_socket_t;
#define IOCX_INVALID_SOCKET (-1)
#endif

/*
 * Error codes.  0 is success; every error is negative.  Connect results
 * carry one of these plus the raw OS code in iocx_connect_result.os_code.
 */
enum iocx_error {
	IOCX_OK = 0,
	IOCX_E_INVAL = -1,		/* bad argument (NULL, unknown flag, ...) */
	IOCX_E_AFNOSUPPORT = -2,	/* address family not IPv4/IPv6 or unusable */
	IOCX_E_ADDRLEN = -3,		/* address length too short for its family */
	IOCX_E_ADDRNOTAVAIL = -4,	/* address not available: all-zero remote
					   or port 0, or the OS refused it */
	IOCX_E_SHUTDOWN = -5,		/* engine is shutting down */
	IOCX_E_LIMIT = -6,		/* in-flight cap reached (and admission
				   queue full), or send queue limit */
	IOCX_E_NOMEM = -7,		/* out of memory */
	IOCX_E_ALREADY = -8,		/* already requested, or no longer
					   possible (see each function) */
	IOCX_E_MSGSIZE = -9,		/* first payload larger than allowed */
	IOCX_E_REFUSED = -10,		/* peer refused the connection (RST) */
	IOCX_E_NETUNREACH = -11,	/* network unreachable */
	IOCX_E_HOSTUNREACH = -12,	/* host unreachable */
	IOCX_E_TIMEDOUT = -13,		/* timed out: a connect attempt (the
					   OS gave up, or deadline_ms
					   expired), or a wait_idle */
	IOCX_E_ADDRINUSE = -14,		/* local address (or 4-tuple) in use */
	IOCX_E_PORTS_EXHAUSTED = -15,	/* no ephemeral port left (bind, or
					   a wildcard socket's connect) */
	IOCX_E_ABORTED = -16,		/* connection aborted locally */
	IOCX_E_RESET = -17,		/* connection reset by peer */
	IOCX_E_CANCELLED = -18,		/* operation cancelled (close, destroy) */
	IOCX_E_NOTSUP = -19,		/* not supported on this platform/backend */
	IOCX_E_INCALLBACK = -20,	/* not allowed from inside a callback */
	IOCX_E_SYSTEM = -21,		/* other OS error: see os_code */
	IOCX_E_EOF = -22,		/* peer closed its side (FIN) */
	IOCX_E_NOTCONN = -23,		/* connection not open (or broken) */
	IOCX_E_IDLE = -24,		/* closed by the idle watchdog */
	IOCX_E_NOFILE = -25,		/* out of descriptors or sockets */
	/* -26 .. -29: Since 0.3.0. */
	IOCX_E_DETACHED = -26,		/* the socket was given to the user */
	IOCX_E_BUSY = -27,		/* I/O still pending on a connection */
	IOCX_E_NAME = -28,		/* host name does not exist (NXDOMAIN,
					   or no address of a usable family) */
	IOCX_E_RESOLVE = -29,		/* name resolution failed or timed out
					   (SERVFAIL, no server answered) */
};

/* Number of distinct codes: valid codes are 0 .. -(IOCX_ERROR_COUNT - 1).
 * 26 in 0.2.0, 30 since 0.3.0: a newer library may return codes beyond
 * the count a program was built with. */
#define IOCX_ERROR_COUNT 30

/*
 * Raw OS code behind the last synchronous failure of iocx_connect() on the
 * calling thread (Windows: the WSA or Win32 error; Linux: the errno), or
 * 0.  Every iocx_connect() call resets it to 0 on entry and sets it only
 * when it returns an error the OS gave (socket set-up: socket, bind, port
 * association, a connect refused at once) or the on_socket hook's
 * non-zero return (IOCX_E_ABORTED); a failure found without the OS (bad
 * input, IOCX_E_LIMIT, IOCX_E_SHUTDOWN, ...) leaves it 0.  No other
 * call touches it.  Thread-local: another thread's calls never change it.
 * Asynchronous outcomes carry their own code in
 * iocx_connect_result.os_code.
 */
IOCX_API uint32_t iocx_last_os_error(void);

/*
 * Short symbolic name of a code ("IOCX_E_REFUSED"); "IOCX_E_UNKNOWN" for a
 * value outside 0 .. -(IOCX_ERROR_COUNT - 1).  Never NULL; pure, any thread.
 */
IOCX_API const char *iocx_error_name(int code);

/*
 * One-sentence English description of a code ("connection refused");
 * "unknown error code" for a value outside the range.  Never NULL; pure,
 * any thread.
 */
IOCX_API const char *iocx_strerror(int code);

/*
 * Replace the allocator used for engines, connections and backend state
 * (default: malloc and free).  Call it before the first engine is created,
 * or while none exists: returns IOCX_E_INVAL for a NULL function (nothing
 * changes), IOCX_E_ALREADY while an engine exists (also from a callback).
 * It is not synchronised with a concurrent iocx_engine_create().  Both
 * functions must be thread-safe.  The OS's own memory (Winsock, io_uring
 * rings), the platform's thread start-up and the Windows resolver's lookup
 * records (which may outlive the engine) do not use them.
 */
IOCX_API int iocx_set_allocator(void *(*alloc_fn)(size_t size),
				void (*free_fn)(void *ptr));

/* ---- name resolution -------------------------------------------------- */

/*
 * One lookup the engine asked a resolver for (opaque).  It stays valid
 * until iocx_query_done() (or iocx_query_done_ttl()) has been called for
 * it.  Since 0.3.0.
 */
typedef struct iocx_query iocx_query;

/*
 * A pluggable resolver: the engine asks it for the addresses of one
 * family (AF_INET6 or AF_INET) of a host name, one query per family,
 * both at once (RFC 8305 section 3).
 *
 * start: begin looking up host (NUL-terminated, valid only during the
 * call) for family.  Returns IOCX_OK, and then calls iocx_query_done(q)
 * exactly once later, from any thread but never from inside start; or a
 * negative IOCX_E_* code, and never calls it.
 * cancel: the engine no longer needs q's answer (a close, destroy, a
 * deadline, or another address won).  A query not yet answered still
 * gets exactly one iocx_query_done(q), with IOCX_E_CANCELLED or whatever
 * the resolver had, possibly from inside cancel.  cancel may race with
 * (or follow) the answer the resolver is giving; it then has nothing to
 * do (q stays valid memory, but the resolver must not answer twice).
 * Both run on engine threads or the caller of iocx_connect, possibly
 * concurrently for different queries; they must not block.  Since 0.3.0.
 */
struct iocx_resolver {
	void *ctx;
	int (*start)(void *ctx, const char *host, int family, iocx_query *q);
	void (*cancel)(void *ctx, iocx_query *q);
};

/*
 * A resolver's answer to q, exactly once per started query.  status:
 * IOCX_OK with addrs[0..n) (AF_INET or AF_INET6 entries of q's family;
 * other entries and ports are ignored, n 0 means no address),
 * IOCX_E_NAME (NXDOMAIN, no data), IOCX_E_CANCELLED after cancel, or any
 * other code, reported as IOCX_E_RESOLVE (SERVFAIL, timeout); os_code is
 * the resolver's own code, passed on in the connect result.  The
 * addresses are copied (at most IOCX_MAX_ADDRESSES) before this returns.
 * Callable from any thread; q must not be used afterwards.  Since 0.3.0.
 */
IOCX_API void iocx_query_done(iocx_query *q, int status, uint32_t os_code,
			      const struct sockaddr_storage *addrs, size_t n);

/*
 * iocx_query_done() with the answer's time to live: ttl_s seconds, the
 * smallest TTL of the addresses given; 0 = unknown or not to be kept.
 * An engine with options.resolve_cache keeps an IOCX_OK answer with
 * addresses of q's family for ttl_s seconds (at most
 * resolve_cache_ttl_max) and answers later connects to the same host name
 * (compared without case) and family from it without asking the
 * resolver.  It also keeps a negative answer (RFC 2308):
 * IOCX_E_NAME, or IOCX_OK without an address of q's family, for ttl_s
 * seconds, the negative TTL (the SOA minimum), or IOCX_RESOLVE_NEGATIVE_TTL
 * when ttl_s is 0, cut to resolve_cache_ttl_max too; later connects then
 * get that family's IOCX_E_NAME (with this os_code) without a query.
 * Other errors (SERVFAIL, timeouts: IOCX_E_RESOLVE) and IOCX_E_CANCELLED
 * are never kept.  iocx_query_done(q, ...) is this with ttl_s 0.  Same
 * rules otherwise.  Since 0.3.0.
 */
IOCX_API void iocx_query_done_ttl(iocx_query *q, int status,
				  uint32_t os_code,
				  const struct sockaddr_storage *addrs,
				  size_t n, uint32_t ttl_s);

/* Addresses of one family a connect by name takes from an answer.
 * Since 0.3.0. */
#define IOCX_MAX_ADDRESSES 16

/*
 * Seconds options.resolve_cache keeps a negative answer whose resolver
 * gave no negative TTL (iocx_query_done_ttl with ttl_s 0, or
 * iocx_query_done; the Linux engine's own resolver, as c-ares 1.18's
 * getaddrinfo does not pass the SOA on).  Short, since a name may come
 * into existence; RFC 2308 section 5 finds one to three hours common for
 * the SOA minimum.  Since 0.3.0.
 */
#define IOCX_RESOLVE_NEGATIVE_TTL 60

/* ---- engine ---------------------------------------------------------- */

/*
 * The engine became idle (see iocx_engine_wait_idle for "idle"): called
 * once per busy -> idle transition, on the worker thread whose on_close
 * made the engine idle, right after that on_close returned, and also when
 * iocx_engine_destroy() closes the last connections.  It counts as a
 * callback: iocx_connect() may be called from it (the engine is busy again
 * from then on), iocx_engine_wait_idle() and iocx_engine_destroy() may
 * not.  It never runs for an engine that was never busy.  When the engine
 * goes busy and idle again while one call is still running, the next call
 * may run at the same time on another worker.
 */
typedef void (*iocx_idle_cb)(iocx_engine *engine, void *user);

struct iocx_engine_options {
	/*
	 * Worker threads dequeuing completions; 0 = one per processor the
	 * process may run on (its affinity; on Windows those of one
	 * processor group, so at most 64).
	 */
	unsigned workers;
	/* Completions taken per wait (GetQueuedCompletionStatusEx entries,
	 * epoll events, io_uring completions reaped); 0 = 64, at most
	 * 4096. */
	unsigned batch;
	/*
	 * Cap on connects started and not yet reported to on_connect
	 * (stats.in_flight); iocx_connect() beyond it fails with
	 * IOCX_E_LIMIT, or waits in the admission queue (see queue_limit).
	 * Inside on_connect the reported connect no longer counts.  0 = no
	 * cap.
	 */
	unsigned max_in_flight;
	/*
	 * Largest part of a first payload sent with the connect itself
	 * (ConnectEx's send buffer; on Linux the first send after the
	 * handshake, or the SYN's data under TFO); the remainder is sent
	 * right after, before on_connect.  The cap exists because Wine never
	 * completes a ConnectEx whose payload the kernel takes only in part
	 * (docs/windows.md); the same split runs on Windows, so a high cap
	 * sends large payloads in one call there but risks that hang under
	 * Wine.  0 = IOCX_DEFAULT_CONNECT_PAYLOAD_CAP.
	 */
	size_t connect_payload_cap;
	/* Bytes of the receive buffer each reading connection owns while
	 * reading; 0 = IOCX_DEFAULT_RECV_BUFFER, at most IOCX_MAX_PAYLOAD. */
	size_t recv_buffer;
	/*
	 * Source addresses to spread connects over (at most IOCX_MAX_SOURCES,
	 * port 0 each, copied at create), for when one address runs out of
	 * ephemeral ports.  A connect without its own local address binds to
	 * the next source of its family, round robin; when that source has
	 * no ephemeral port left (IOCX_E_PORTS_EXHAUSTED or
	 * IOCX_E_ADDRINUSE) it moves on to the following one, and only when
	 * every source of the family is exhausted does it fail with
	 * IOCX_E_PORTS_EXHAUSTED.  A family without a source uses the
	 * wildcard address; each retry picks a source again (except a
	 * Windows retry on the socket of the attempt before, which keeps
	 * its bind: see struct iocx_retry).  NULL / 0 = the wildcard
	 * address for every connect.
	 */
	const struct sockaddr_storage *sources;
	size_t nsources;
	/*
	 * Windows only (the Linux backends ignore it).  Recycle sockets: a
	 * graceful close of a connection whose socket the kernel bound (no
	 * local address, no sources) and that asked for a plain socket (no
	 * TFO, no SYN tuning, not v4-mapped) disconnects it with
	 * DisconnectEx(TF_REUSE_SOCKET) instead of closing it; on_close
	 * follows once the disconnect completed, which TIME_WAIT can delay.
	 * The socket, still bound and associated with the port, goes to a
	 * pool of its family (at most 256 each), and the next plain,
	 * wildcard-bound connect of that family takes it, saving socket,
	 * bind and association (stats.sockets_recycled, sockets_reused).
	 * Where the OS refuses to reconnect a kept socket (Wine 8:
	 * WSAEISCONN), the first refusal turns recycling off for the
	 * engine, closes the pool and counts stats.recycle_fallbacks, and
	 * that connect goes on with a fresh socket: the caller sees a normal
	 * connect.  Destroy closes the pool.  Unverified on real Windows
	 * (docs/windows.md, "What Wine cannot confirm").
	 */
	bool recycle_sockets;
	/*
	 * io_uring only: call on_close as soon as the close is queued, not
	 * once it is done.  Without it, io_uring already closes a socket the
	 * kernel bound (no local address of the connect's own or from
	 * sources), on its worker, on Linux 5.7 or newer, with room in the
	 * ring, while the worker has other operations in its ring, through
	 * that ring instead of with system calls of its own (an abortive
	 * close resets it there too: a connect to AF_UNSPEC, which is what
	 * close does under SO_LINGER {1, 0}), and calls on_close at the
	 * close's completion, one pass of the worker later; other sockets
	 * close at once.  With batch_closes the close
	 * goes to the kernel with the worker's next submission and on_close
	 * runs at once, just before the socket is closed, not just after;
	 * it is closed before the worker waits again (or, after a rejected
	 * submission, the time after), and before iocx_engine_destroy()
	 * returns.  The other backends ignore it.
	 */
	bool batch_closes;
	/*
	 * Backend to run on, by name: NULL or "auto" = the best this
	 * machine runs (Linux: "io_uring", else "epoll"; Windows: "iocp").
	 * On Linux "auto" may be overridden by the environment variable
	 * IOCX_BACKEND.  A name this platform lacks, or a backend the
	 * machine cannot run (io_uring disabled by kernel.io_uring_disabled
	 * or a seccomp filter), gives IOCX_E_NOTSUP.
	 */
	const char *backend;
	/* Optional: called at each busy -> idle transition (iocx_idle_cb),
	 * with idle_user. */
	iocx_idle_cb on_idle;
	void *idle_user;
	/*
	 * Admission queue, with max_in_flight: a connect that finds the cap
	 * reached waits, holding no socket, until a connect in flight is
	 * reported, and starts then, oldest first.  Up to queue_limit wait;
	 * beyond that iocx_connect() returns IOCX_E_LIMIT.  0 = no queue
	 * (IOCX_E_LIMIT at the cap).  Ignored without max_in_flight.  A
	 * waiting request is in flight for its caller: iocx_close(),
	 * iocx_engine_destroy() (on_connect IOCX_E_CANCELLED) and its
	 * total_deadline_ms (IOCX_E_TIMEDOUT) end it where it waits.
	 */
	unsigned queue_limit;
	/*
	 * Pacing: at most connect_rate attempts per second across the
	 * engine (first attempts and retries), with bursts of up to
	 * connect_burst (0 = 1) after a quiet spell.  Each attempt takes a
	 * turn 1/connect_rate after the previous turn; it may start up to
	 * connect_burst - 1 turns early, and one that starts less than one
	 * interval after its turn (the engine woke late) keeps it, so such
	 * lateness costs no rate.  One that starts an interval or more
	 * late (a stall) takes a new turn then: the missed turns are lost,
	 * never started at once.  So any t seconds hold at most
	 * ceil(connect_rate * t) + connect_burst starts (connect_rate * t
	 * + connect_burst when t is a whole number of intervals), and the
	 * rate holds while the engine wakes less than 1/connect_rate late.
	 * An attempt takes its turn when it really starts: its start is the
	 * engine's clock reading the turn was decided on, right before its
	 * socket is opened, and its latency_ns counts from that same reading:
	 * the bound above holds exactly for these starts, whatever the worker's
	 * lateness (a program sees one as its on_connect's clock minus
	 * latency_ns, late by the time between the engine's reading and its
	 * own, never early).  The socket follows its start by the time socket
	 * creation takes; nothing bounds that time (a preempted thread), so the
	 * bound is the starts', not the sockets'.  One that cannot start yet
	 * waits, oldest first, holding its in-flight slot but no socket; a
	 * waiter that is closed or expires takes no turn.  Each attempt of a
	 * Happy Eyeballs race takes a turn of its own (since 0.3.0): one whose
	 * turn has not come waits (the attempts already started go on), even
	 * when it would start at once because the others failed, and the
	 * Connection Attempt Delay (attempt_delay_ms) before the next one runs
	 * from when it really started; so below 1/attempt_delay_ms the rate
	 * spaces a race's attempts.  Wake-ups: Linux waits to the microsecond;
	 * Windows waits in whole milliseconds, ended by the system timer's tick
	 * (by default about 15.6 ms; docs/windows.md "Pacing").  Where the
	 * wait's granularity G is longer than 1/connect_rate, every wake-up is
	 * a stall and at most connect_burst attempts start per wake-up: choose
	 * connect_burst > connect_rate * G there to keep the rate.  0 =
	 * unpaced.
	 */
	uint32_t connect_rate;
	uint32_t connect_burst;
	/*
	 * Most bytes one connection may have queued for sending: accepted
	 * by iocx_send() and not yet reported by on_sent.  An iocx_send()
	 * that would go beyond it returns IOCX_E_LIMIT and queues nothing;
	 * the connection's on_drained then follows once the queue falls
	 * below half of it.  A single send larger than the limit is never
	 * accepted (IOCX_E_LIMIT, and no on_drained for it).  0 = no limit
	 * (and no on_drained).  Since 0.3.0.
	 */
	size_t max_queued_bytes;
	/*
	 * Largest piece of a send (or of a first payload's remainder)
	 * handed to the OS in one operation; a larger send goes out in
	 * pieces of this size, so that the OS never locks down megabytes
	 * of one request.  0 = IOCX_DEFAULT_SEND_CHUNK.  At most
	 * IOCX_MAX_SEND_CHUNK: a completion counts its bytes in 32 bits,
	 * so iocx_engine_create() refuses a larger value with
	 * IOCX_E_INVAL; a piece is also at most 1 GiB whatever this says
	 * (a larger valid value acts as 1 GiB).  Since 0.3.0.
	 */
	size_t send_chunk;
	/*
	 * Host names (docs/names.md).  resolver: how names are looked up,
	 * NULL = the platform's own (Linux: see dns_servers; Windows:
	 * asynchronous GetAddrInfoExW, answered through the engine's
	 * completion port; elsewhere none, and a request by name then
	 * gives IOCX_E_NOTSUP); it must stay valid until
	 * iocx_engine_destroy() returns.
	 * resolution_delay_ms: how long an answer of the other family waits
	 * for the prefer_family one before the race starts, 0 = 50.
	 * attempt_delay_ms: the Connection Attempt Delay, 0 = 250, clamped
	 * to 100..2000 (RFC 8305 section 5).  prefer_family: AF_INET6 or
	 * AF_INET, tried first; 0 = AF_INET6.  Another value, or a resolver
	 * without start or cancel, gives IOCX_E_INVAL at create.  All four:
	 * Since 0.3.0.
	 */
	uint32_t resolution_delay_ms;	/* (here, it fills a gap) */
	const struct iocx_resolver *resolver;
	uint32_t attempt_delay_ms;
	int prefer_family;
	/*
	 * Linux, no resolver given: the engine resolves names with its own
	 * (c-ares, one thread per engine, started at the first name).
	 * dns_servers: the DNS servers it asks, "ADDR:PORT" entries
	 * separated by commas (copied at create); then it asks only them
	 * (no hosts file, no search domains).  NULL = the system's
	 * (/etc/resolv.conf, /etc/hosts).  A malformed list makes the
	 * first connect by name fail with IOCX_E_INVAL.  Windows, no
	 * resolver given: GetAddrInfoExW takes no list of servers, so a
	 * non-NULL dns_servers makes iocx_engine_create() return
	 * IOCX_E_NOTSUP (give a resolver of your own to ask given
	 * servers); with a resolver given it is ignored, as on Linux.
	 * Since 0.3.0.
	 */
	const char *dns_servers;
	/*
	 * A cache of answers, off by default (docs/names.md).
	 * resolve_cache: most answers kept, one per host name and family;
	 * 0 = no cache, above IOCX_MAX_RESOLVE_CACHE gives IOCX_E_INVAL at
	 * create.  An answer is kept for the TTL its resolver gave
	 * (iocx_query_done_ttl; the Linux engine's own resolver gives the
	 * DNS TTL), cut to resolve_cache_ttl_max seconds (0 = no cut); an
	 * answer with addresses but without a TTL is not kept.  Negative
	 * answers are kept too (RFC 2308: NXDOMAIN, or no
	 * address of the family), for the resolver's negative TTL or
	 * IOCX_RESOLVE_NEGATIVE_TTL, cut the same way; failures
	 * (IOCX_E_RESOLVE) and cancels never are.  A full cache drops the
	 * answer kept longest ago.  A connect by name whose family is in
	 * the cache takes its answer from it without a query: its
	 * addresses, or for a negative answer that family's IOCX_E_NAME
	 * (an IPv4-only name then waits no Resolution Delay for AAAA; a
	 * name that does not exist fails with IOCX_E_NAME at once).
	 * resolve_ns then is the time until the race starts, the
	 * Resolution Delay included if the other family still had to be
	 * asked; everything else about the connect is the same.  Kept
	 * until the engine is destroyed; any resolver, any platform.  Both:
	 * Since 0.3.0.
	 */
	uint32_t resolve_cache;
	uint32_t resolve_cache_ttl_max;
	/*
	 * Room for the fields of later versions, so that the struct keeps its
	 * size (256 bytes on 64-bit targets) and every field its offset.
	 * Must be zero: iocx_engine_create() returns IOCX_E_INVAL otherwise
	 * (a program built against a newer header asked for something this
	 * library lacks).  iocx_engine_options_init() or a zero initialiser
	 * takes care of it.
	 */
	uint64_t reserved[13];
};

/* Most answers options.resolve_cache may keep.  Since 0.3.0. */
#define IOCX_MAX_RESOLVE_CACHE (1u << 20)

/* Most source addresses an engine takes. */
#define IOCX_MAX_SOURCES 64

#define IOCX_DEFAULT_RECV_BUFFER 16384

/* Default options.send_chunk (measured: docs/architecture.md).  Since
 * 0.3.0. */
#define IOCX_DEFAULT_SEND_CHUNK (256u * 1024)
/* Largest options.send_chunk: one operation's 32-bit byte count.  Since
 * 0.3.0. */
#define IOCX_MAX_SEND_CHUNK 0xFFFFFFFFu

#define IOCX_DEFAULT_CONNECT_PAYLOAD_CAP 4096
/* Largest first payload iocx_connect() accepts. */
#define IOCX_MAX_PAYLOAD (16u * 1024 * 1024)

/* Fill *opts with defaults (all zero fields = defaults); NULL is ignored. */
IOCX_API void iocx_engine_options_init(struct iocx_engine_options *opts);

/*
 * Create an engine and start its workers (Windows: starts Winsock, creates
 * the completion port and loads ConnectEx for each family; Linux: one
 * io_uring ring or epoll set per worker).  opts may be NULL for defaults.
 * Returns IOCX_OK and sets *out, or leaves *out untouched and nothing
 * behind and returns:
 *  - IOCX_E_INVAL: NULL out, a non-zero reserved word, a batch above
 *    4096, a resolve_cache above IOCX_MAX_RESOLVE_CACHE, a recv_buffer above
 *    IOCX_MAX_PAYLOAD, a send_chunk above IOCX_MAX_SEND_CHUNK, more than
 *    IOCX_MAX_SOURCES sources, NULL sources with nsources > 0, a source
 *    with a port, a resolver without start or cancel, or a
 *    prefer_family other than 0, AF_INET and AF_INET6;
 *  - IOCX_E_AFNOSUPPORT: a source that is not IPv4 or IPv6;
 *  - IOCX_E_NOTSUP: backend names one this platform lacks, or one the
 *    machine cannot run; Windows: dns_servers without a resolver;
 *  - IOCX_E_NOMEM: an allocation failed;
 *  - IOCX_E_SYSTEM: WSAStartup, the port, the IPv4 ConnectEx, a ring or
 *    a thread could not be set up.
 * If only the IPv6 ConnectEx cannot be loaded, the engine is created and
 * IPv6 connects fail with IOCX_E_AFNOSUPPORT.  Any thread; engines are
 * independent of each other.
 */
IOCX_API int iocx_engine_create(const struct iocx_engine_options *opts,
				iocx_engine **out);

/*
 * Shut the engine down and free it:
 *  1. from the start of the call, iocx_connect() fails with
 *     IOCX_E_SHUTDOWN;
 *  2. connects and first-payload sends still in flight are cancelled and
 *     report IOCX_E_CANCELLED to on_connect (or their real result if they
 *     finished first); backoffs and recycling disconnects are cancelled;
 *  3. every open connection, and every one still draining a graceful
 *     close, is reset (RST, not FIN): queued sends report
 *     IOCX_E_CANCELLED to on_sent, a read session ends with
 *     IOCX_E_CANCELLED;
 *  4. every connection gets its on_close: IOCX_E_SHUTDOWN if the user had
 *     not closed it, IOCX_OK if they had;
 *  5. once every on_close has returned, it frees every handle, released
 *     or not (those of connections the idle watchdog closed included);
 *  6. it returns once all callbacks have returned, the workers have exited
 *     and every socket and handle is closed.
 * Returns IOCX_OK, IOCX_E_INVAL for NULL, or IOCX_E_INCALLBACK (and does
 * nothing) from inside a callback of any engine.  Connections need not be
 * closed first.  Call it once, from a thread that runs no callback; the
 * engine pointer is invalid when it returns.  Callbacks may keep calling
 * iocx_connect() (IOCX_E_SHUTDOWN) and iocx_close() until their on_close.
 * An iocx_connect() already running on another thread is waited for (it
 * returns IOCX_E_SHUTDOWN or a connection destroy then closes), but a call
 * that starts after destroy returned uses a freed engine: stop other
 * threads from calling engine functions first.  Handles are not freed
 * before step 5, so until then any thread may still call on a handle it
 * has not released (iocx_close() then releases it and returns IOCX_OK,
 * data calls return IOCX_E_NOTCONN once it is closing); a call that is
 * still running at step 5, or made later, uses freed memory, as for the
 * engine: stop those threads before destroy returns.
 * Windows, the engine's own resolver (since 0.3.0): destroy does not wait
 * for lookups GetAddrInfoExW still runs (cancelled ones the OS could not
 * stop: Wine 8 gives no cancel handle, and a cancel can come too late);
 * their connects have had their one IOCX_E_CANCELLED.  Until each such
 * lookup's completion routine has run, it keeps the engine's Winsock
 * reference (destroy then skips its WSACleanup, which would cancel the
 * lookup without ever calling the routine; once the routine has run,
 * the next iocx_engine_create() or iocx_engine_destroy() calls it) and a
 * reference on iocx.dll, which
 * therefore stays loaded until the process ends, FreeLibrary or not.
 * Without such lookups, destroy gives both back before it returns.
 */
IOCX_API int iocx_engine_destroy(iocx_engine *engine);

/* iocx_engine_wait_idle() timeout: wait as long as it takes. */
#define IOCX_WAIT_FOREVER UINT32_MAX

/*
 * Wait until the engine is idle: no connection open or in flight, that is,
 * every iocx_connect() that returned IOCX_OK (on any thread) has had its
 * on_close return.  Returns IOCX_OK as soon as the engine is idle, at once
 * if it is already; IOCX_OK also when it was idle for a moment during the
 * wait and another thread started a connect right after.  timeout_ms
 * bounds the wait: IOCX_E_TIMEDOUT when it passed with the engine busy all
 * along; 0 only looks, IOCX_WAIT_FOREVER never times out.  The engine
 * stays usable either way (connect again, wait again, or destroy it, which
 * closes what is still open).  Sockets may still be closing in the OS when
 * it returns (batch_closes), but no callback of a connection is left to
 * run, so memory given to them as user pointers may be freed (on_idle may
 * still be running on a worker).  IOCX_E_INCALLBACK from inside any iocx
 * callback (it would wait for itself), IOCX_E_INVAL for a NULL engine.
 * Any number of threads may wait at once; none may race
 * iocx_engine_destroy() of the same engine.
 */
IOCX_API int iocx_engine_wait_idle(iocx_engine *engine, uint32_t timeout_ms);

/* Name of the backend in use ("iocp", "io_uring" or "epoll"), for logs
 * and bench banners; "none" for NULL.  Any thread. */
IOCX_API const char *iocx_engine_backend(const iocx_engine *engine);

/* Number of worker threads the engine runs; 0 for NULL.  Any thread. */
IOCX_API unsigned iocx_engine_workers(const iocx_engine *engine);

/* ---- connections ----------------------------------------------------- */

struct iocx_connect_result {
	int status;		/* IOCX_OK or a negative IOCX_E_* code */
	uint32_t os_code;	/* raw OS code behind status (Windows: the
				   NTSTATUS of the completion, e.g.
				   0xC0000236 for a refusal, or the WSA
				   error of a call that failed on the
				   worker; Linux: errno); 0 on success, and
				   0 when iocx itself decided (a deadline
				   expired, or a close cut a successful
				   operation short) */
	size_t payload_sent;	/* first-payload bytes the OS confirmed,
				   summed from the completions (never from
				   ConnectEx's lpdwBytesSent): payload_len
				   on success, 0..payload_len on failure */
	uint64_t latency_ns;	/* from just before the first attempt's
				   socket creation (the reading its pacing
				   turn was decided on; after any admission
				   queue, pacing wait or name resolution;
				   from iocx_connect when no attempt
				   started) to just before on_connect */
	bool fastopen;		/* TCP Fast Open was enabled on the socket */
	bool syn_tuned;		/* the OS took the SYN retransmission tuning */
	unsigned attempts;	/* connect attempts made, 1 without retries,
				   at most retry.max_attempts (no bound
				   with a total deadline and max_attempts
				   0); by name, each race counts one (see
				   struct iocx_retry; since 0.3.0) */
	/*
	 * Windows: the wildcard-bound socket took SO_REUSE_UNICASTPORT
	 * (Windows 10 and later; best effort), so its port was chosen at
	 * connect time and is shared per 4-tuple instead of reserved for
	 * every destination; out of ports then shows as
	 * IOCX_E_PORTS_EXHAUSTED in on_connect.  Always false elsewhere
	 * (Linux never binds a wildcard socket before connect, so its ports
	 * are per destination already) and for a recycled socket.  With
	 * pad0: Since 0.3.0.
	 */
	bool port_reuse;
	uint8_t pad0[7];	/* zero; keeps reserved on its word */
	/*
	 * The address connected to (or, on failure, the last one tried),
	 * with its port: the connection's own copy, valid until on_close
	 * returns; NULL (peer_len 0) when no address was tried.  peer,
	 * resolve_ns, peer_len and addresses_tried: Since 0.3.0.
	 */
	const struct sockaddr *peer;
	uint64_t resolve_ns;	/* time spent resolving the host name,
				   summed over every race; 0 for a connect
				   by address or numeric host */
	uint32_t peer_len;
	unsigned addresses_tried;	/* addresses attempted, summed over
					   every race (one a later race tries
					   again counts again); 1 by address */
	/* Fields of later versions (zero here); 128 bytes in all. */
	uint64_t reserved[8];
};

/*
 * Connect outcome: called exactly once per successful iocx_connect(), also
 * when the connect failed or was cancelled; result is valid during the
 * call only.  On success the connection is open until iocx_close(); on
 * failure the socket is already closed and the handle only awaits
 * iocx_close(), after which on_close(IOCX_OK) follows.
 */
typedef void (*iocx_connect_cb)(iocx_conn *conn,
				const struct iocx_connect_result *result,
				void *user);

/*
 * Final callback of a connection, always the last.  reason is IOCX_OK
 * after iocx_close() (also when the close came before destroy, or from
 * on_connect), IOCX_E_SHUTDOWN when iocx_engine_destroy() closed a
 * connection the user had not closed, IOCX_E_IDLE when the idle watchdog
 * (idle_ms) closed it, IOCX_E_DETACHED after iocx_detach().
 * The handle is freed once this has returned and the program released it
 * (iocx_close, or a successful iocx_detach), whichever comes last:
 *  - after the program's release (reason IOCX_OK or IOCX_E_DETACHED) it
 *    is freed when this returns, and must not be used afterwards;
 *  - after a close the engine started (IOCX_E_IDLE, IOCX_E_SHUTDOWN) it
 *    stays valid until the program's iocx_close(), from here (the usual
 *    pattern: call iocx_close() when reason is not IOCX_OK) or later from
 *    any thread (iocx_engine_destroy() frees it if that never comes).
 *    Meanwhile iocx_conn_user() still answers, the socket accessors say
 *    IOCX_INVALID_SOCKET / IOCX_E_NOTCONN, data calls and iocx_detach()
 *    return IOCX_E_NOTCONN, and stats.unreleased counts it.
 * When it runs, the engine is done with the connection's socket: closed
 * it, or (recycle_sockets) disconnected it for reuse, or (iocx_detach())
 * handed it over; except on io_uring with options.batch_closes, where the
 * close runs just after it.  io_uring mostly closes through the worker's
 * ring and calls on_close at the close's completion (see batch_closes);
 * otherwise the socket is closed with system calls just before it.
 * on_close may be NULL: the connection still closes, and is freed by the
 * same rule, but the caller is never told when.
 */
typedef void (*iocx_close_cb)(iocx_conn *conn, int reason, void *user);

enum iocx_payload_ownership {
	/* The engine copies the payload; the caller's buffer is free at once. */
	IOCX_PAYLOAD_COPY = 0,
	/*
	 * The caller keeps the buffer alive and unchanged until on_connect
	 * (across every retry attempt; the engine and the OS read it from
	 * worker threads).  If the call fails synchronously the buffer is
	 * free when it returns.
	 */
	IOCX_PAYLOAD_BORROW = 1,
};

/*
 * Retry policy.  A connect attempt that fails with IOCX_E_REFUSED,
 * IOCX_E_NETUNREACH or IOCX_E_TIMEDOUT is retried, while attempts remain
 * and no close was requested, after an exponential backoff with jitter:
 * the delay before attempt n+1 is drawn uniformly from [d/2, d] with
 * d = min(backoff_max_ms, backoff_initial_ms * 2^(n-1)), so clients that
 * failed together do not retry in step.  The first payload is sent again
 * from its first byte.  on_connect reports only the last outcome, with
 * result.attempts; stats.retries counts the attempts after the first.
 * iocx_close(), destroy or the total deadline during a backoff report
 * once (IOCX_E_CANCELLED, IOCX_E_TIMEDOUT) and close whatever socket the
 * connection still held.  All zero = no retries.
 *
 * Which socket a retry uses:
 *  - Windows: when the OS itself failed the attempt (ConnectEx completed
 *    with WSAECONNREFUSED, WSAENETUNREACH or WSAETIMEDOUT), the socket
 *    stays open through the backoff and the retry issues ConnectEx again
 *    on it, as Microsoft's ConnectEx page allows: same bind, same local
 *    port, same options, same completion-port association (no source is
 *    picked again; stats.same_socket_retries).  An attempt the engine
 *    cancelled (deadline_ms) leaves its socket in an undefined state: its
 *    retry takes a fresh socket.  Where the OS refuses the second
 *    ConnectEx at once (Wine 8: WSAECONNABORTED), that attempt goes on
 *    with a fresh socket, the engine takes fresh sockets for every retry
 *    from then on, and stats.same_socket_fallbacks counts the refusal;
 *    the caller sees a normal retry.
 *  - Linux (io_uring, epoll): every retry takes a fresh socket, and a
 *    source is picked again.  The kernel would connect a refused socket
 *    again, but there a fresh socket costs one socket() (it is not bound
 *    before its connect) against a backoff of 50 ms or more, and starts
 *    from a clean state (docs/architecture.md, "Same-socket retries").
 *
 * By host name (since 0.3.0), one attempt is one whole race: a
 * resolution and the Happy Eyeballs attempts to its addresses
 * (docs/names.md).  A race whose every attempt failed with one of the
 * three failures above, or that found no address because resolution
 * failed (IOCX_E_RESOLVE, also deadline_ms passing while it resolves),
 * is raced again after the backoff, which holds no socket; a race with
 * another failure among its attempts (a hook's IOCX_E_ABORTED, a socket
 * that could not be made) or whose name does not exist (IOCX_E_NAME) is
 * not.  Each race resolves the name again (through the engine's answer
 * cache when resolve_cache is on and the answer's TTL still runs, so a
 * crawler that wants the same addresses again turns the cache on), so
 * a name whose addresses changed is raced with the new ones.  A name
 * that resolved to a single address connects, and retries, exactly as
 * by address.  A race reports only once all its attempts have closed;
 * on_connect reports the last race's outcome (its last attempt's error),
 * result.attempts the races made and addresses_tried the attempts of
 * all of them.
 */
struct iocx_retry {
	unsigned max_attempts;		/* total attempts; 0 or 1 = one attempt */
	uint32_t backoff_initial_ms;	/* 0 = 100 ms */
	uint32_t backoff_max_ms;	/* 0 = 10 s */
};

/* Most attempts a retry policy may ask for. */
#define IOCX_MAX_ATTEMPTS 1000

enum iocx_connect_flags {
	/*
	 * Ask for TCP Fast Open (Windows: TCP_FASTOPEN on any connect; Linux:
	 * TCP_FASTOPEN_CONNECT, with a payload only).  Best effort: where the
	 * OS refuses (Wine always does) the connect goes on without it, and
	 * that is not an error.  result.fastopen and stats.fastopen_used say
	 * whether the option was accepted, not whether the payload travelled
	 * in the SYN (that is up to the OS and the peer's cookie).
	 */
	IOCX_CONNECT_FASTOPEN = 1u << 0,
};

/*
 * Socket hook of a connect request: called once for every socket an
 * attempt opens, after it exists (created, bound, associated with the
 * engine) and before its first connect is issued, with the native socket
 * and its address family (AF_INET or AF_INET6; AF_INET6 also for a
 * v4-mapped remote).  So once per attempt, except for a Windows retry
 * that connects again on the socket of the attempt before (see struct
 * iocx_retry): that socket keeps the options the hook set, and the hook
 * is not called again for it.  Meant for setsockopt: TCP_NODELAY,
 * SO_KEEPALIVE, buffer sizes, IP_TOS and the like.  It must not close
 * the socket, connect, bind, read or write it, change its blocking mode
 * or (Windows) its completion port: the engine owns it.  A socket taken
 * from the recycle pool (options.recycle_sockets) is a fresh one for
 * this purpose: no socket whose connection had a hook is ever kept for
 * reuse.  By host name (since 0.3.0) it runs on the socket of every
 * attempt of a race too (with the request's user), so the socket a race
 * wins has seen it.
 *
 * Return 0 to go on.  Any other value fails the attempt with
 * IOCX_E_ABORTED and that value as its os_code; the socket is closed and
 * the attempt is not retried.  For the first attempt that failure is
 * returned by iocx_connect() itself (no callback follows); for a retry
 * it is reported to on_connect.  In a race it fails that attempt only:
 * its connect is never issued, the next address is tried at once (at
 * its pacing turn), and the race reports it only if no attempt connects
 * and it was the last failure; a race with such a failure is not raced
 * again (struct iocx_retry).
 *
 * Thread: the first attempt's hook runs on the thread calling
 * iocx_connect(), inside that call; a retry's on an engine worker (the
 * one that runs the backoff timer); a race attempt's on the worker that
 * handles the connection, never inside iocx_connect().  Never
 * concurrently with the connection's other callbacks.  In a retry's
 * hook the connection may be closed with iocx_close(): the attempt then
 * ends with IOCX_E_CANCELLED and its connect is never issued.  In a
 * race attempt's hook too, but there the attempt's connect is issued
 * and then cancelled with the rest of the race.  Since 0.3.0.
 */
typedef int (*iocx_socket_cb)(iocx_socket_t sock, int family, void *user);

/*
 * The send queue drained: called once after an iocx_send() of this
 * connection returned IOCX_E_LIMIT, when the bytes queued (queued, as
 * iocx_conn_queued_bytes says) fell below half of
 * options.max_queued_bytes, right after the on_sent that made them
 * fall.  Sending may resume.  Not called once the connection broke or a
 * close was asked for.  Runs on a worker like the other callbacks.
 * Since 0.3.0.
 */
typedef void (*iocx_drained_cb)(iocx_conn *conn, size_t queued, void *user);

/*
 * A connect request.  It and the addresses it points to are copied by
 * iocx_connect(): they may be reused as soon as the call returns.
 */
struct iocx_connect_request {
	/* AF_INET or AF_INET6, required.  An IPv4-mapped IPv6 address
	 * (::ffff:a.b.c.d) connects over a dual-stack IPv6 socket. */
	const struct sockaddr *remote;
	size_t remote_len;
	/* Optional bind address of the remote's family (a zero address or
	 * port 0 is allowed); NULL = the engine's next source of the
	 * family, or else the wildcard address, port 0. */
	const struct sockaddr *local;
	size_t local_len;
	/*
	 * Optional first payload, sent as soon as the connection is
	 * established (part of it in the SYN under TFO), split at
	 * options.connect_payload_cap.  on_connect(IOCX_OK) comes only once
	 * the OS confirmed all of it.  If the send of the rest fails, the
	 * connection is reset (the peer has only part of it) and on_connect
	 * reports the error with the partial payload_sent.
	 */
	const void *payload;
	size_t payload_len;
	enum iocx_payload_ownership payload_ownership;
	unsigned flags;			/* IOCX_CONNECT_* */
	iocx_connect_cb on_connect;	/* required */
	iocx_close_cb on_close;		/* optional */
	void *user;			/* passed to on_connect, on_close and
					   on_recv; never dereferenced */
	/*
	 * Deadline of each attempt, in ms, from the moment its connect is
	 * issued, covering the handshake and the whole first payload; 0 =
	 * none.  On expiry the attempt's operation is cancelled, its
	 * completion awaited and its socket closed (a cancelled connect
	 * keeps trying underneath until then); the attempt fails with
	 * IOCX_E_TIMEDOUT and os_code 0 (retried if the policy says so).  An
	 * operation that completes before the cancel takes effect reports
	 * its real result.  A deadline can cut an attempt short, not make it
	 * last longer than the OS's own SYN budget (about 21 s on Windows;
	 * Linux: net.ipv4.tcp_syn_retries): past that the OS fails the
	 * attempt first, with IOCX_E_TIMEDOUT and its own os_code.  To wait
	 * longer, use total_deadline_ms, which makes fresh attempts.
	 * Deadlines never fire early and may fire up to a timer tick late
	 * (about 15.6 ms on Windows).
	 */
	uint32_t deadline_ms;
	struct iocx_retry retry;
	/*
	 * Idle watchdog, in ms; 0 = none.  An open connection on which no
	 * data moved (no send completed, nothing received) for this long is
	 * closed by the engine with a reset (an idle peer may not be
	 * reading): on_close then reports IOCX_E_IDLE, at any moment, on a
	 * worker.  The handle is not freed then: it stays valid, on every
	 * thread, until the program's iocx_close() releases it (see
	 * iocx_close_cb), so another thread may keep calling on it without
	 * synchronising with on_close.  Activity only stamps a time; the
	 * timer re-arms lazily.
	 */
	uint32_t idle_ms;
	/*
	 * SYN retransmission tuning, best effort like TFO: where the OS
	 * refuses it (Wine does) the connect goes on untuned, and
	 * result.syn_tuned says which.
	 * syn_rtt_ms: the initial round-trip estimate the retransmission
	 * timeout is computed from, 0 = leave the system's.
	 * syn_retransmissions: SYN retransmissions before the OS gives up,
	 * 1..253, IOCX_SYN_NO_RETRANSMISSIONS, or 0 = leave the system's
	 * (254 is IOCX_E_INVAL).
	 * Windows 8 and later take both (SIO_TCP_INITIAL_RTO).  Linux takes
	 * syn_retransmissions 1..127 (TCP_SYNCNT) when syn_rtt_ms is 0;
	 * anything else stays untuned there.  A deadline_ms bounds the
	 * attempt either way; these make the OS retry faster (or not at
	 * all) inside it.  A tuned connect never takes a recycled socket.
	 */
	uint16_t syn_rtt_ms;
	uint8_t syn_retransmissions;
	/*
	 * Deadline of the whole request, in ms from iocx_connect(); 0 =
	 * none.  It covers every attempt, every backoff and any wait before
	 * the first attempt, and bounds each attempt's own deadline.  When
	 * it expires before on_connect, whatever is in flight is cancelled
	 * and its socket closed, and on_connect reports IOCX_E_TIMEDOUT
	 * (os_code 0) once, unless the connect in flight completed first
	 * (its real result wins, as for deadline_ms); an attempt that fails
	 * after the expiry reports IOCX_E_TIMEDOUT too.  With a total
	 * deadline, retry.max_attempts 0 means no limit: a refusal, an
	 * unreachable network or the OS's own SYN give-up is retried (after
	 * the policy's backoff, see struct iocx_retry) until the deadline.
	 * It no longer applies once the connection is open.
	 */
	uint32_t total_deadline_ms;
	/*
	 * Socket hook (see iocx_socket_cb), NULL = none; gets user.  A
	 * connect by host name runs it on every attempt's socket.  Since
	 * 0.3.0.
	 */
	iocx_socket_cb on_socket;
	/*
	 * Backpressure notification (see iocx_drained_cb), NULL = none.
	 * Since 0.3.0.
	 */
	iocx_drained_cb on_drained;
	/*
	 * The peer by name instead of remote (a request has exactly one of
	 * the two): a host name or a numeric address, NUL-terminated,
	 * copied at the call, and the port (host byte order) to connect
	 * to.  A numeric host ("192.0.2.1", "2001:db8::1", "[::1]")
	 * connects exactly like a remote address.
	 *
	 * A name is looked up through the engine's resolver (AAAA and A
	 * at once) and its addresses raced as RFC 8305 says
	 * (docs/names.md): families interleaved, prefer_family first; an A
	 * answer waits resolution_delay_ms for AAAA; the next attempt
	 * starts after attempt_delay_ms, or at once when none is running;
	 * the first to connect wins and the others are cancelled and
	 * closed.  Attempts carry no payload: the winner sends it after
	 * its handshake, before on_connect.  When both answers are in
	 * before any attempt and hold one address in all, the connect is
	 * exactly one by address (payload in the handshake, retry policy).
	 * deadline_ms bounds the resolution (IOCX_E_RESOLVE when it
	 * passes) and each attempt; total_deadline_ms bounds everything
	 * from iocx_connect() (admission wait, resolution, race, retry
	 * backoffs; then every query and attempt is cancelled and
	 * on_connect reports IOCX_E_TIMEDOUT).  The retry policy races the
	 * name again, from a fresh resolution, after a race whose attempts
	 * all failed as it retries (struct iocx_retry), and on_socket runs
	 * on every attempt (iocx_socket_cb); since 0.3.0.  The request
	 * takes its in-flight slot (max_in_flight, queue_limit) before it
	 * resolves; connect_rate paces every attempt of a race (see
	 * connect_rate).  In the result, resolve_ns is the resolution and
	 * latency_ns runs from the first attempt's socket (with retries,
	 * the first race's: later resolutions and backoffs are inside it).
	 * A failed race reports the last attempt's error; no address at
	 * all gives IOCX_E_NAME or IOCX_E_RESOLVE.  A close or destroy at
	 * any point cancels every query and attempt:
	 * on_connect(IOCX_E_CANCELLED), once.  Both: Since 0.3.0.
	 */
	const char *host;
	uint16_t port;
	/*
	 * Room for the fields of later versions (256 bytes in all on 64-bit
	 * targets).  Must be zero: iocx_connect() returns IOCX_E_INVAL
	 * otherwise.  Zero the whole request (memset, or = { 0 } / a
	 * designated initialiser) before filling it in.
	 */
	uint64_t reserved[14];
};

/* syn_retransmissions value: send the SYN once, never again. */
#define IOCX_SYN_NO_RETRANSMISSIONS 255

/* Longest host name a request may give, in bytes (without the NUL).
 * Since 0.3.0. */
#define IOCX_MAX_HOST 253

/*
 * Start a connection; its outcome arrives in on_connect.  On IOCX_OK,
 * *out (if out is not NULL) is set before any callback can run, and the
 * handle is the program's until it releases it (iocx_close): valid on
 * any thread until then, even if the engine closed it meanwhile (idle
 * watchdog).  Its memory outlives this call even when on_connect, on a
 * worker, already closed it and its on_close returned; but once the
 * program's own release is made (there or anywhere), *out must not be
 * used again.  On error no callback will run, *out is left as it was and
 * any socket opened is closed.  The checks run in this order, and the
 * first failing one is returned:
 *  1. arguments, IOCX_E_INVAL: NULL engine, req or on_connect;
 *     neither or both of remote and host; a host that is empty, longer
 *     than IOCX_MAX_HOST, or neither a host name nor a numeric address
 *     (bytes other than letters, digits, '-', '_' and '.', an empty label
 *     or one above 63 bytes, an all-digit last label that is not a
 *     dotted-quad IPv4 address, a ':' or '[' that is not a whole IPv6
 *     address); a non-zero reserved word (a field of a later version);
 *     payload_len > 0 with a NULL payload; unknown flags; an unknown
 *     payload_ownership; syn_retransmissions 254; retry.max_attempts
 *     above IOCX_MAX_ATTEMPTS; a backoff_initial_ms above a non-zero
 *     backoff_max_ms;
 *  2. remote address: IOCX_E_ADDRLEN when remote_len cannot hold the
 *     family field, IOCX_E_AFNOSUPPORT for a family other than AF_INET or
 *     AF_INET6, IOCX_E_ADDRLEN when too short for sockaddr_in /
 *     sockaddr_in6, IOCX_E_ADDRNOTAVAIL for an all-zero address (0.0.0.0,
 *     ::) or port 0; the same for a numeric host (which is then
 *     exactly a remote address), and a host name with port 0;
 *  3. local address: the same length and family checks, and
 *     IOCX_E_AFNOSUPPORT for a family other than the remote's;
 *  4. payload_len above IOCX_MAX_PAYLOAD: IOCX_E_MSGSIZE; then, for a
 *     host that is a name, IOCX_E_NOTSUP on an engine without a resolver
 *     or on a backend that cannot race attempts;
 *  5. a destroying engine: IOCX_E_SHUTDOWN (also when destroy runs
 *     concurrently on another thread; checked again once the connection
 *     is allocated);
 *  6. allocation, IOCX_E_NOMEM: the connection, and the timer capacity a
 *     connect with deadline_ms, a retry policy, idle_ms,
 *     total_deadline_ms or an engine connect_rate reserves, so that
 *     arming a timer never fails later;
 *  7. max_in_flight reached: IOCX_E_LIMIT, or with a queue_limit only
 *     when the admission queue is full too (a request that finds room
 *     there waits, and returns IOCX_OK);
 *  8. socket set-up: IOCX_E_NOFILE (no descriptor left: EMFILE, ENFILE;
 *     WSAEMFILE, or WSAENOBUFS from socket creation; the engine goes on
 *     working, and connects succeed again once descriptors are freed; a
 *     retry whose socket cannot be created reports it to on_connect),
 *     IOCX_E_NOMEM (the OS has no memory for a socket),
 *     IOCX_E_AFNOSUPPORT (the OS refuses the family, or the IPv6 ConnectEx
 *     is missing), IOCX_E_NOTSUP (IPV6_V6ONLY = 0 refused for a v4-mapped
 *     remote), IOCX_E_PORTS_EXHAUSTED (no ephemeral port left, on every
 *     source), IOCX_E_ADDRINUSE (an explicit local port in use),
 *     IOCX_E_ADDRNOTAVAIL (the local address is not this host's),
 *     IOCX_E_SYSTEM (other socket failures, or the port association);
 *  9. the on_socket hook (see iocx_socket_cb), run here for the first
 *     attempt: a non-zero return is IOCX_E_ABORTED;
 * 10. the connect itself: IOCP and epoll issue it on the calling thread,
 *     so a connect the OS rejects at once is returned here, mapped like a
 *     completion (e.g. IOCX_E_REFUSED, IOCX_E_NETUNREACH); io_uring issues
 *     it on the connection's worker, so there the same rejection arrives
 *     through on_connect.  Callers handle both.
 * A request that waits before its first socket (queue_limit, a pacing
 * turn with connect_rate, or a host name to resolve) returns IOCX_OK
 * after step 7: its socket is
 * opened later on a worker, so steps 8 and 9 report to on_connect
 * instead, and do not set iocx_last_os_error().
 * Validation (1-4) happens before anything is allocated, so a bad request
 * to a destroying engine reports its own error, not IOCX_E_SHUTDOWN.  Any
 * thread, including callbacks; calls may run concurrently.
 */
IOCX_API int iocx_connect(iocx_engine *engine,
			  const struct iocx_connect_request *req,
			  iocx_conn **out);

enum iocx_close_mode {
	/* Queued sends go out, then close: FIN after the data. */
	IOCX_CLOSE_GRACEFUL = 0,
	/* Queued sends are dropped; SO_LINGER {1, 0} and close: RST. */
	IOCX_CLOSE_ABORT = 1,
};

/*
 * Release a connection: required once per connection, after success and
 * after failure alike, and after an on_close the engine started (unless
 * iocx_detach() succeeded, which is the release).  The first call is the
 * program's release: the handle stays valid until its on_close has
 * returned (at once when that came already) and must not be used
 * afterwards.  on_close follows, unless it came already.  By state:
 *  - connect or first-payload send in flight: the operation is cancelled
 *    (CancelIoEx on Windows); on_connect reports IOCX_E_CANCELLED, or the
 *    real result if the operation completed first (IOCX_OK only if the
 *    whole payload went out; the socket is closed anyway).  The socket is
 *    closed in the asked mode, except that a connected socket whose
 *    payload was cut short is always reset, so the peer never sees a FIN
 *    after a truncated payload;
 *  - retry backoff: on_connect reports IOCX_E_CANCELLED (a socket kept
 *    for the next attempt, Windows, is closed first);
 *  - open: a graceful close lets queued sends go out (their on_sent
 *    report IOCX_OK), an abortive one drops them (IOCX_E_CANCELLED);
 *    a read session ends with on_recv(IOCX_E_CANCELLED); then the
 *    socket is closed in the asked mode;
 *  - failed (socket already closed): the mode does not matter;
 *  - closed by the engine (on_close(IOCX_E_IDLE) or, during destroy,
 *    IOCX_E_SHUTDOWN came): it only releases the handle, freeing it if
 *    on_close has returned, and returns IOCX_OK, no callback follows.
 * A graceful close waits for the peer to take the queued data; a second
 * call with IOCX_CLOSE_ABORT while it is in progress (e.g. from your own
 * timer when the peer stopped reading) returns IOCX_OK, drops what is
 * still queued and resets.  That is the only change a second call can
 * make: once the graceful close has closed the socket, or for any other
 * repeated close, it returns IOCX_E_ALREADY, and an abortive close never
 * turns graceful.
 * Returns IOCX_OK, IOCX_E_INVAL for a NULL conn or unknown mode,
 * IOCX_E_ALREADY as above (nothing changes), or IOCX_E_SYSTEM when the
 * request could not be posted to the engine: it stays recorded and takes
 * effect at the connection's next event or at destroy, and the handle is
 * released all the same (do not retry: that returns IOCX_E_ALREADY).
 * Any thread.  Inside the connection's own callback it needs no post,
 * never returns IOCX_E_SYSTEM, and is applied when the callback returns
 * (so on_close never runs inside the on_connect that closed).  From
 * on_close of a connection the engine closed it returns IOCX_OK and
 * releases it (freed when on_close returns).  The handle must not have
 * been released before: a second release once its on_close returned is
 * a use of freed memory, like a double free (the IOCX_E_ALREADY above
 * is only seen while the handle is still valid).
 */
IOCX_API int iocx_close(iocx_conn *conn, enum iocx_close_mode mode);

/* The user pointer given in the connect request; NULL for a NULL conn.
 * Any thread, while the handle is valid (until it is released and its
 * on_close returned; see iocx_close_cb). */
IOCX_API void *iocx_conn_user(const iocx_conn *conn);

/*
 * The connection's native socket (SOCKET / file descriptor), or
 * IOCX_INVALID_SOCKET when it is not open: valid from just before
 * on_connect reports IOCX_OK until the socket is released on the way to
 * on_close (iocx_close, a broken connection's close, destroy, the idle
 * watchdog); it is never valid inside on_close.  Any thread.
 *
 * What the user may do with it: get and set socket options
 * (setsockopt / getsockopt: TCP_NODELAY, keep-alive, buffer sizes,
 * IP_TOS, SO_LINGER before a close), getsockname / getpeername, and
 * read-only queries (ioctl FIONREAD, WSAIoctl queries).  What the user
 * must not do while the engine owns it: close it, send or receive on it
 * (the engine's reads and queued sends would interleave with or lose
 * those bytes), shutdown, connect, change its blocking mode, associate
 * it with another completion port or event loop, or keep using it after
 * on_close.  To take it over for good, use iocx_detach().  Since 0.3.0.
 */
IOCX_API iocx_socket_t iocx_conn_socket(const iocx_conn *conn);

/*
 * The local address of an open connection (the address and port the
 * peer sees for us; family AF_INET or AF_INET6), copied to *out.  Asked
 * of the OS (getsockname) on the first call and then kept, so connections
 * nobody asks about pay nothing for it (when no memory can be had to keep
 * it, the OS is asked on every call).  IOCX_OK;
 * IOCX_E_INVAL for NULL arguments; IOCX_E_NOTCONN when the socket is not
 * open (as iocx_conn_socket); when the OS would not say, its error mapped
 * (IOCX_E_NOMEM for ENOBUFS / WSAENOBUFS, else mostly IOCX_E_SYSTEM),
 * nothing is kept and the next call asks again.  Any thread.  Since
 * 0.3.0.
 */
IOCX_API int iocx_conn_local_addr(const iocx_conn *conn,
				  struct sockaddr_storage *out);

/*
 * The remote address of an open connection, as given in the request
 * (a v4-mapped IPv6 address stays IPv6), copied to *out.  IOCX_OK,
 * IOCX_E_INVAL for NULL arguments, IOCX_E_NOTCONN when not open.
 * Any thread.  Since 0.3.0.
 */
IOCX_API int iocx_conn_remote_addr(const iocx_conn *conn,
				   struct sockaddr_storage *out);

/*
 * Take the socket away from the engine for good: on IOCX_OK *sock is the
 * connected socket, the caller owns it (and closes it), and the engine
 * never touches it again: no read, send, cancel, option or close.  The
 * connection then closes without a socket: on_close follows, on a worker,
 * with reason IOCX_E_DETACHED (inside the connection's own callback: once
 * that callback returned).  A successful detach is the program's release
 * of the handle, which is freed when that on_close returns: iocx_close()
 * is not needed (until then it returns IOCX_E_ALREADY, also with
 * IOCX_CLOSE_ABORT).  Send and read calls
 * fail with IOCX_E_NOTCONN from the moment this returns.
 *
 * Only an idle connection can be detached, so that no byte is lost or
 * read twice: every send reported by on_sent (iocx_conn_queued_bytes()
 * is 0), no read session (after iocx_read_stop(), its terminal on_recv
 * came), no FIN still waiting for the queue.  Otherwise IOCX_E_BUSY and
 * nothing changes; nothing is cancelled for the caller.
 *
 * What the new owner gets: on Linux a TCP socket, non-blocking on the
 * epoll backend and blocking on io_uring (set the mode you need), out of
 * every epoll set and ring of the engine.  On Windows an overlapped
 * SOCKET whose completion-port association has been removed
 * (NtSetInformationFile with FileReplaceCompletionInformation, Windows
 * 8.1 and later), so it can be associated with another port or used with
 * plain blocking calls; where the OS refuses that (earlier Windows, and
 * Wine 8), IOCX_E_NOTSUP is returned and the connection stays the
 * engine's, unchanged.
 *
 * Callable from any thread except from inside another connection's
 * callback (IOCX_E_INCALLBACK: that would take two connections' locks);
 * it waits while one of this connection's callbacks runs elsewhere.
 * IOCX_E_INVAL for NULL arguments, IOCX_E_NOTCONN when the connection is
 * not open or a close was asked for, the error that broke it, IOCX_E_BUSY
 * as above, IOCX_E_NOTSUP as above.  Since 0.3.0.
 */
IOCX_API int iocx_detach(iocx_conn *conn, iocx_socket_t *sock);

/* ---- data on an open connection -------------------------------------- */

/*
 * A send finished: status IOCX_OK with bytes == the length asked, or an
 * error with the bytes that went out: the error that broke the connection
 * (IOCX_E_RESET, ...; every send still queued gets it too), or
 * IOCX_E_CANCELLED when an abortive close or destroy dropped it.  A short
 * OS completion is re-issued by the engine; callers never see partial
 * sends.  Called exactly once per send iocx_send() accepted, in the order
 * of the sends, and always before on_close.
 */
typedef void (*iocx_send_cb)(iocx_conn *conn, int status, size_t bytes,
			     void *send_user);

/*
 * Data arrived: status IOCX_OK with data[0..len), valid only during the
 * call (the engine owns the buffer).  Otherwise the end of reading, exactly
 * once per session: IOCX_E_EOF (the peer sent FIN), IOCX_E_RESET, another
 * error (also that of a FIN or a send the OS refused: iocx_shutdown,
 * iocx_send), or
 * IOCX_E_CANCELLED (iocx_read_stop, close or destroy); reading
 * has stopped then and this is the last call for this read_start.  Under
 * Wine 8 a receive after the peer's reset reports 0 bytes, so a reset
 * reads as IOCX_E_EOF there (docs/windows.md, "Data after a reset").
 */
typedef void (*iocx_recv_cb)(iocx_conn *conn, int status, const void *data,
			     size_t len, void *user);

/*
 * Queue buf[0..len) for sending on an open connection (once on_connect
 * reported IOCX_OK, also from inside it).  Sends leave in order; on_sent
 * is called once each, with send_user.  Ownership as for the first
 * payload: COPY copies now, BORROW keeps the caller's buffer until
 * on_sent.  A large send goes to the OS in options.send_chunk pieces;
 * on_sent still reports it once, whole.  stats.bytes_sent counts what the
 * OS confirmed.  Any thread, also inside callbacks.  Returns IOCX_OK, or
 * without calling on_sent: IOCX_E_INVAL (NULL conn, buf or on_sent, len 0,
 * bad ownership), IOCX_E_NOTCONN (not open yet, failed, closing, or after
 * iocx_shutdown), the error that broke the connection, IOCX_E_LIMIT (the
 * connection's queue would exceed options.max_queued_bytes: see
 * on_drained), or IOCX_E_NOMEM.  A send the OS refuses breaks the
 * connection: its on_sent and every queued send's get the error, and a
 * read session on ends with on_recv(that error) (Since 0.3.0), after any
 * data its receive got first, since the peer's answer to what we did not
 * send may never come.  Then close as usual.
 */
IOCX_API int iocx_send(iocx_conn *conn, const void *buf, size_t len,
		       enum iocx_payload_ownership ownership,
		       iocx_send_cb on_sent, void *send_user);

/*
 * Bytes queued on the connection for sending: accepted by iocx_send()
 * and not yet reported by on_sent (a gauge; also what
 * options.max_queued_bytes bounds).  0 for NULL.  Any thread.  Since
 * 0.3.0.
 */
IOCX_API size_t iocx_conn_queued_bytes(const iocx_conn *conn);

/*
 * Start a read session: on_recv gets the data as it arrives, into a buffer
 * of options.recv_buffer bytes the connection owns while reading, until
 * iocx_read_stop, EOF, an error or close (stats.bytes_received counts
 * what was delivered).  Any thread, also inside callbacks.  Returns
 * IOCX_OK, IOCX_E_INVAL for NULL arguments, IOCX_E_NOTCONN when the
 * connection is not open, the error that broke it, IOCX_E_ALREADY when
 * a session is on or its terminal on_recv has not been made yet, or
 * IOCX_E_NOMEM when the connection's first send or read finds no memory
 * for its data-path state (docs/architecture.md, "Memory per
 * connection"; nothing changed then).
 */
IOCX_API int iocx_read_start(iocx_conn *conn, iocx_recv_cb on_recv);

/*
 * End the read session.  A receive already in flight is cancelled; data it
 * may still have got is delivered first, then the terminal
 * on_recv(IOCX_E_CANCELLED), after which no on_recv follows.  Any thread,
 * also inside callbacks.  Returns IOCX_OK, IOCX_E_INVAL for a NULL conn,
 * IOCX_E_NOTCONN when no session is on, or IOCX_E_ALREADY when a stop was
 * already asked.
 *
 * A lost socket (Since 0.3.0): where the OS will not cancel the receive
 * (CancelIoEx failing with anything but ERROR_NOT_FOUND on Windows, an
 * io_uring cancel that finds nothing while the receive still waits), the
 * engine ends it by closing the socket (Windows) or shutting it down both
 * ways (io_uring), rather than leave the session to the peer's next
 * byte.  The terminal on_recv still says IOCX_E_CANCELLED, but the
 * connection is broken from then on, as after a failed send: iocx_send,
 * iocx_read_start, iocx_shutdown and iocx_detach return IOCX_E_ABORTED,
 * iocx_conn_socket gives IOCX_INVALID_SOCKET and the address accessors
 * IOCX_E_NOTCONN, and a send in flight ends with an error.  The
 * connection stays until iocx_close (on_close(IOCX_OK), as usual) or its
 * idle watchdog.
 */
IOCX_API int iocx_read_stop(iocx_conn *conn);

/*
 * Send FIN once every queued send has gone out; further iocx_send calls
 * fail with IOCX_E_NOTCONN.  Reading goes on.  Any thread, also inside
 * callbacks.  Returns IOCX_OK, IOCX_E_INVAL for a NULL conn,
 * IOCX_E_NOTCONN when not open, the error that broke the connection, or
 * IOCX_E_ALREADY when already requested.  The FIN is sent later, on a
 * worker: if the OS refuses it, the connection breaks with the mapped
 * error (e.g. IOCX_E_NOTCONN for ENOTCONN when the peer's reset came first
 * on Linux), and iocx_send and iocx_read_start return that error from then
 * on.  A read session already on ends with on_recv(that error), after any
 * data its receive got first: without our FIN the peer's may never come.
 * Then close as usual.
 */
IOCX_API int iocx_shutdown(iocx_conn *conn);

/* ---- statistics ------------------------------------------------------ */

/* Length of iocx_stats.errors, independent of IOCX_ERROR_COUNT. */
#define IOCX_STATS_ERRORS 64

/*
 * Engine counters.  Each is counted just before the matching callback, so
 * inside on_connect the reported connect no longer counts as in flight.  A
 * connect that fails synchronously leaves no count behind, though
 * in_flight (and, when the connect call itself fails, connects_started and
 * open) include it for a moment while iocx_connect() runs.
 */
struct iocx_stats {
	uint64_t connects_started;	/* iocx_connect() calls that returned OK */
	uint64_t connects_ok;		/* on_connect with IOCX_OK */
	uint64_t connects_failed;	/* on_connect with an error, incl. cancel */
	uint64_t connects_cancelled;	/* ... of which IOCX_E_CANCELLED */
	uint64_t payload_bytes;		/* first-payload bytes confirmed, over all
					   reported connects, failed included */
	uint64_t fastopen_used;		/* started connects whose socket took
					   TCP_FASTOPEN */
	uint64_t retries;		/* attempts after the first */
	uint64_t bytes_sent;		/* iocx_send bytes the OS confirmed */
	uint64_t bytes_received;	/* bytes delivered to on_recv */
	uint64_t sockets_recycled;	/* sockets kept after a disconnect */
	uint64_t sockets_reused;	/* connects that took a kept socket */
	uint64_t recycle_fallbacks;	/* kept sockets the OS refused to
					   reconnect */
	uint64_t closed;		/* connections that reached their end
					   (on_close made, or due if NULL) */
	uint64_t in_flight;		/* gauge: started, not yet reported to
					   on_connect (what max_in_flight caps) */
	uint64_t open;			/* gauge: handles from a successful
					   iocx_connect() until on_close */
	/*
	 * on_connect failures by code: errors[-code], code < 0; errors[0]
	 * stays 0.  Fixed length: entries from IOCX_ERROR_COUNT on stay 0
	 * until codes are added there.
	 */
	uint64_t errors[IOCX_STATS_ERRORS];
	/* Requests total_deadline_ms ended (on_connect IOCX_E_TIMEDOUT). */
	uint64_t total_deadline_expiries;
	uint64_t queued;		/* connects that waited in the queue */
	uint64_t paced;			/* attempts that waited for their
					   pacing turn (connect_rate) */
	/*
	 * Windows: retries whose ConnectEx went out on the socket of the
	 * attempt before (see struct iocx_retry), and kept sockets the OS
	 * refused to connect again (each then took a fresh socket; the
	 * first refusal turns same-socket retries off for the engine).
	 * Always 0 on Linux.  Both: Since 0.3.0.
	 */
	uint64_t same_socket_retries;
	uint64_t same_socket_fallbacks;
	/*
	 * Gauge: handles whose on_close has returned while the program had
	 * not released them (the idle watchdog closed them, or a destroy is
	 * closing them).  Each keeps its memory until iocx_close() releases
	 * it (see iocx_close_cb); one that keeps growing is a program that
	 * forgets to.  Since 0.3.0.
	 */
	uint64_t unreleased;
	/* Counters of later versions (zero here); 1024 bytes in all. */
	uint64_t reserved[43];
};

/*
 * Copy a snapshot of the engine's counters into *out without stopping it.
 * The counters are relaxed atomics, one set per worker thread plus one for
 * every other thread, read one by one and added up: a snapshot taken under
 * load may be off by the operations that completed while it was read, and
 * its fields need not add up exactly; a gauge never reads below 0.  Once
 * the engine is quiet every field is exact.  Returns IOCX_OK, or
 * IOCX_E_INVAL for a NULL engine or out.  Any thread, also callbacks.
 */
IOCX_API int iocx_engine_stats(const iocx_engine *engine,
			       struct iocx_stats *out);

/* ---- send and receive errors ----------------------------------------- */

/*
 * Send and receive outcomes by code, of the whole engine, for every
 * connection (iocx_stats.errors counts only connect outcomes).  Fixed
 * length like iocx_stats.errors: index -code, code < 0; index 0 and the
 * entries of codes the library does not have stay 0.  Its own call and
 * struct because two tables of IOCX_STATS_ERRORS do not fit in
 * iocx_stats' reserved tail; 1536 bytes, of which reserved[] is for
 * later versions (zero here).  Since 0.3.0.
 */
struct iocx_io_errors {
	/*
	 * on_sent calls with an error, by code: each failed send counts
	 * once, so a reset that fails three queued sends counts three;
	 * IOCX_E_CANCELLED for sends an abortive close or destroy dropped.
	 * Also a FIN (iocx_shutdown) the OS refused, which has no on_sent.
	 */
	uint64_t send[IOCX_STATS_ERRORS];
	/*
	 * Terminal on_recv calls, by code: one per read session that ended,
	 * IOCX_E_EOF (the peer's FIN) and IOCX_E_CANCELLED (iocx_read_stop,
	 * close, destroy) included, beside IOCX_E_RESET and the rest.
	 */
	uint64_t recv[IOCX_STATS_ERRORS];
	uint64_t reserved[64];
};

/*
 * Copy a snapshot of the engine's send and receive error counters into
 * *out (its reserved words set to 0).  Each worker counts in its own set
 * (no cache line shared per operation), and this call adds the sets up
 * like iocx_engine_stats(): exact once the engine is quiet.  A code is
 * counted just before its callback.  Returns IOCX_OK, or IOCX_E_INVAL for
 * a NULL engine or out.  Any thread, also from a callback.  Since 0.3.0.
 */
IOCX_API int iocx_engine_io_errors(const iocx_engine *engine,
				   struct iocx_io_errors *out);

/* ---- connect latency histogram --------------------------------------- */

/*
 * Bucket layout of struct iocx_histogram, in nanoseconds: HdrHistogram's
 * counts array for 2 significant digits (sub-bucket count 256, lowest
 * discernible value 1), so bucket i here is index i of an HdrHistogram
 * of those settings and a log writer can copy the counts as they are.
 * Buckets 0..255 hold the value i each; above, with
 * s = i / 128 - 1 (i >> 7 minus 1), bucket i holds the 2^s values from
 * low(i) = (i - 128 * s) << s up to low(i) + 2^s - 1 (every bucket is at
 * most 1/128 of its lowest value wide).  IOCX_HISTOGRAM_BUCKETS buckets
 * cover every 64-bit value.  Histograms with this layout merge exactly
 * (across engines, intervals and machines) by adding their counts bucket
 * by bucket: iocx_histogram_merge() does that.
 */
#define IOCX_HISTOGRAM_SUB_BUCKET_BITS 7
#define IOCX_HISTOGRAM_BUCKETS 7424

struct iocx_histogram {
	/*
	 * In: an array of bucket_cap counts the call fills, or NULL for the
	 * summary only.  bucket_cap must then be IOCX_HISTOGRAM_BUCKETS or
	 * more (the struct's size never depends on the layout).
	 */
	uint64_t *buckets;
	size_t bucket_cap;
	/* Out: buckets[0..nbuckets) written, the last one non-empty; 0 when
	 * empty (or no array was given).  The rest of the array is left
	 * untouched. */
	size_t nbuckets;
	uint64_t count;		/* values recorded */
	uint64_t sum;		/* their sum, ns (for exact merged means) */
	uint64_t min, max;	/* ns; 0 when empty */
	double mean;		/* ns */
	/* Percentiles, ns: the highest value of the bucket that holds the
	 * ceil(p/100 * count)-th smallest value, clamped to [min, max]; so
	 * at most 1/128 above the exact one, never below it. */
	uint64_t p50, p90, p99, p999;
};

enum iocx_latency_flags {
	/* Start the next interval: the following call covers only connects
	 * reported after this one. */
	IOCX_LATENCY_RESET = 1u << 0,
	/* The resolution histogram instead: the resolve_ns of every connect
	 * by name whose resolution gave addresses (recorded when the race
	 * or the single attempt starts); its own intervals.  Since
	 * 0.3.0. */
	IOCX_LATENCY_RESOLUTION = 1u << 1,
};

/*
 * Snapshot of the engine's connect latency histogram: the latency_ns of
 * every on_connect that reported IOCX_OK (so count matches
 * iocx_stats.connects_ok), since the engine was created or, after a call
 * with IOCX_LATENCY_RESET, since the last such call.  Recording costs no
 * shared cache line: each worker keeps its own histogram, and this call
 * adds them up without stopping the engine (a connect reported while it
 * runs lands in this snapshot or the next, never in both or neither).
 * min and max are exact until the first reset; in an interval after a
 * reset they are the bounds of its lowest and highest non-empty buckets.
 * Returns IOCX_E_INVAL for a NULL engine or out, unknown flags, or
 * buckets with a bucket_cap below IOCX_HISTOGRAM_BUCKETS;
 * IOCX_E_NOMEM when no scratch memory could be had (then nothing is
 * reset).  Any thread, also from a callback.
 */
IOCX_API int iocx_engine_latency(iocx_engine *engine,
				 struct iocx_histogram *out, unsigned flags);

/*
 * Add src's values into dst: counts bucket by bucket, count and sum, min
 * and max; then recompute dst's mean and percentiles from the merged
 * buckets.  Both need bucket arrays (src's nbuckets are read).  Returns
 * IOCX_E_INVAL for NULL arguments, a missing array or a bucket_cap below
 * IOCX_HISTOGRAM_BUCKETS, IOCX_E_NOMEM when no scratch memory could be
 * had; dst is unchanged then.
 */
IOCX_API int iocx_histogram_merge(struct iocx_histogram *dst,
				  const struct iocx_histogram *src);

#ifdef __cplusplus
}
#endif

#endif /* IOCX_H */
