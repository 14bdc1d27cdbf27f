/*
 * iocx: an asynchronous TCP connection engine.
 *
 * One engine owns a small pool of worker threads and one completion port
 * (Windows IOCP; a native backend on Linux).  iocx_connect() starts a
 * connection, optionally carrying a first payload that leaves with the
 * handshake; the outcome arrives in callbacks on a worker thread.
 *
 * Threading and lifetime contract (details in docs/api.md):
 *  - Callbacks run on engine worker threads, never inside the call that
 *    started the operation.  Callbacks of one connection never run
 *    concurrently with each other.
 *  - Every iocx_connect() that returns IOCX_OK yields exactly one on_connect
 *    call and, later, exactly one on_close call; on_close is always the last
 *    callback of a connection.  The iocx_conn handle stays valid until
 *    on_close returns and must not be used afterwards.
 *  - The caller releases every connection with iocx_close() (also after a
 *    failed connect); iocx_engine_destroy() closes whatever is left.
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
 * soname), also while MAJOR is 0.
 */
#define IOCX_VERSION_MAJOR 0
#define IOCX_VERSION_MINOR 2
#define IOCX_VERSION_PATCH 0
#define IOCX_VERSION_STRING "0.2.0"
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
 * Error codes.  0 is success; every error is negative.  Connect results
 * carry one of these plus the raw OS code in iocx_connect_result.os_code.
 */
enum iocx_error {
	IOCX_OK = 0,
	IOCX_E_INVAL = -1,		/* bad argument (NULL, unknown flag, ...) */
	IOCX_E_AFNOSUPPORT = -2,	/* address family not IPv4/IPv6 or unusable */
	IOCX_E_ADDRLEN = -3,		/* address length too short for its family */
	IOCX_E_ADDRNOTAVAIL = -4,	/* all-zero address, port 0, or OS refusal */
	IOCX_E_SHUTDOWN = -5,		/* engine is shutting down */
	IOCX_E_LIMIT = -6,		/* connects-in-flight cap reached */
	IOCX_E_NOMEM = -7,		/* out of memory */
	IOCX_E_ALREADY = -8,		/* close already requested */
	IOCX_E_MSGSIZE = -9,		/* first payload larger than allowed */
	IOCX_E_REFUSED = -10,		/* peer refused the connection (RST) */
	IOCX_E_NETUNREACH = -11,	/* network unreachable */
	IOCX_E_HOSTUNREACH = -12,	/* host unreachable */
	IOCX_E_TIMEDOUT = -13,		/* connect attempt timed out */
	IOCX_E_ADDRINUSE = -14,		/* local address (or 4-tuple) in use */
	IOCX_E_PORTS_EXHAUSTED = -15,	/* no ephemeral port left to bind */
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
	IOCX_E_NAME = -26,		/* host name does not exist (NXDOMAIN,
					   or no address of a usable family) */
	IOCX_E_RESOLVE = -27,		/* name resolution failed or timed out
					   (SERVFAIL, no server answered) */
};

/* Number of distinct codes: valid codes are 0 .. -(IOCX_ERROR_COUNT - 1). */
#define IOCX_ERROR_COUNT 28

/* Short symbolic name of a code ("IOCX_E_REFUSED"); never NULL. */
IOCX_API const char *iocx_error_name(int code);

/* One-sentence English description of a code; never NULL. */
IOCX_API const char *iocx_strerror(int code);

/*
 * Replace the allocator used for every engine and connection.  Call it
 * before the first engine is created (and only when none exists): returns
 * IOCX_E_INVAL for NULL functions, IOCX_E_ALREADY while an engine exists.
 * The functions must be thread-safe.
 */
IOCX_API int iocx_set_allocator(void *(*alloc_fn)(size_t size),
				void (*free_fn)(void *ptr));

/* ---- name resolution -------------------------------------------------- */

/*
 * One lookup the engine asked a resolver for (opaque).  It stays valid
 * until iocx_query_done() has been called for it.
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
 * concurrently for different queries; they must not block.
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
 * Callable from any thread; q must not be used afterwards.
 */
IOCX_API void iocx_query_done(iocx_query *q, int status, uint32_t os_code,
			      const struct sockaddr_storage *addrs, size_t n);

/* Addresses of one family a connect by name takes from an answer. */
#define IOCX_MAX_ADDRESSES 16

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
	/* Worker threads dequeuing completions; 0 = number of CPUs. */
	unsigned workers;
	/* Entries per GetQueuedCompletionStatusEx call; 0 = 64. */
	unsigned batch;
	/* Cap on connects started but not yet reported; 0 = no cap. */
	unsigned max_in_flight;
	/*
	 * Largest part of a first payload that ConnectEx itself carries; the
	 * remainder is sent right after the handshake, before on_connect.
	 * 0 = IOCX_DEFAULT_CONNECT_PAYLOAD_CAP.
	 */
	size_t connect_payload_cap;
	/* Bytes of the receive buffer each reading connection owns while
	 * reading; 0 = IOCX_DEFAULT_RECV_BUFFER. */
	size_t recv_buffer;
	/*
	 * Source addresses to spread connects over (port 0 each, copied at
	 * create), for when one address runs out of ephemeral ports.  A
	 * connect without its own local address binds to the next source of
	 * its family, round robin, and moves on to the following one when a
	 * bind finds the ports exhausted.  NULL / 0 = the wildcard address.
	 */
	const struct sockaddr_storage *sources;
	size_t nsources;
	/*
	 * Recycle sockets: a graceful close of a wildcard-bound connection
	 * disconnects it with DisconnectEx(TF_REUSE_SOCKET) and keeps the
	 * socket, still bound and associated, for the next connect of the
	 * same family (saving socket, bind and port association).  Where
	 * the OS cannot reuse a socket (Wine), the first failed reuse turns
	 * recycling off for the engine and connects go on with fresh
	 * sockets (stats.recycle_fallbacks).
	 */
	bool recycle_sockets;
	/*
	 * io_uring only: close a socket through the worker's ring, in its
	 * next submission, instead of with system calls of its own; an
	 * abortive close resets it there too (a connect to AF_UNSPEC, which
	 * is what close does under SO_LINGER {1, 0}).  Saves two system
	 * calls per abortive close, one per graceful one (docs/linux.md has
	 * what that buys).  The price: on_close runs just before the socket
	 * is closed, not just after; it is closed before the worker waits
	 * again (or, after a rejected submission, the time after), and
	 * before iocx_engine_destroy() returns.  Applies to
	 * sockets the kernel bound (no local address of the connect's own
	 * or from sources) closed on their worker; others close at once.
	 * The other backends ignore it.
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
	 * Host names (docs/names.md).  resolver: how names are looked up,
	 * NULL = the platform's own (Linux: see dns_servers; elsewhere none
	 * yet, and a request by name then gives IOCX_E_NOTSUP);
	 * it must stay valid until iocx_engine_destroy() returns.
	 * resolution_delay_ms: how long an answer of the other family waits
	 * for the prefer_family one before the race starts, 0 = 50.
	 * attempt_delay_ms: the Connection Attempt Delay, 0 = 250, clamped
	 * to 100..2000 (RFC 8305 section 5).  prefer_family: AF_INET6 or
	 * AF_INET, tried first; 0 = AF_INET6.  Another value, or a resolver
	 * without start or cancel, gives IOCX_E_INVAL at create.
	 */
	const struct iocx_resolver *resolver;
	uint32_t resolution_delay_ms;
	uint32_t attempt_delay_ms;
	int prefer_family;
	/*
	 * Linux, no resolver given: the engine resolves names with its own
	 * (c-ares, one thread per engine, started at the first name).
	 * dns_servers: the DNS servers it asks, "ADDR:PORT" entries
	 * separated by commas (copied at create); then it asks only them
	 * (no hosts file, no search domains).  NULL = the system's
	 * (/etc/resolv.conf, /etc/hosts).  A malformed list makes the
	 * first connect by name fail with IOCX_E_INVAL.  Ignored
	 * elsewhere (Windows: not built yet, names need a resolver).
	 */
	const char *dns_servers;
	/*
	 * Room for the fields of later versions, so that the struct keeps its
	 * size (256 bytes on 64-bit targets) and every field its offset.
	 * Must be zero: iocx_engine_create() returns IOCX_E_INVAL otherwise
	 * (a program built against a newer header asked for something this
	 * library lacks).  iocx_engine_options_init() or a zero initialiser
	 * takes care of it.
	 */
	uint64_t reserved[18];
};

/* Most source addresses an engine takes. */
#define IOCX_MAX_SOURCES 64

#define IOCX_DEFAULT_RECV_BUFFER 16384

#define IOCX_DEFAULT_CONNECT_PAYLOAD_CAP 4096
/* Largest first payload iocx_connect() accepts. */
#define IOCX_MAX_PAYLOAD (16u * 1024 * 1024)

/* Fill *opts with defaults (all zero fields = defaults). */
IOCX_API void iocx_engine_options_init(struct iocx_engine_options *opts);

/*
 * Create an engine and start its workers.  opts may be NULL for defaults.
 * Returns IOCX_OK and sets *out, or an error (IOCX_E_INVAL for a NULL out,
 * a non-zero reserved word, a batch above 4096, a recv_buffer above
 * IOCX_MAX_PAYLOAD, more than
 * IOCX_MAX_SOURCES sources, a NULL sources with nsources > 0, or a source
 * with a port; IOCX_E_AFNOSUPPORT for a source not IPv4/IPv6, IOCX_E_NOMEM, IOCX_E_SYSTEM) and leaves *out
 * untouched.
 */
IOCX_API int iocx_engine_create(const struct iocx_engine_options *opts,
				iocx_engine **out);

/*
 * Shut the engine down and free it.  New connects fail with
 * IOCX_E_SHUTDOWN; every connect still in flight reports IOCX_E_CANCELLED
 * to on_connect; every connection not yet closed gets on_close with
 * IOCX_E_SHUTDOWN.  Returns once all callbacks have returned, the workers
 * have exited and every socket and handle is closed.  Must not be called
 * from a callback (returns IOCX_E_INCALLBACK and does nothing); NULL gives
 * IOCX_E_INVAL.
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
 * and bench banners; "none" for NULL. */
IOCX_API const char *iocx_engine_backend(const iocx_engine *engine);

/* Number of worker threads the engine runs; 0 for NULL. */
IOCX_API unsigned iocx_engine_workers(const iocx_engine *engine);

/* ---- connections ----------------------------------------------------- */

struct iocx_connect_result {
	int status;		/* IOCX_OK or a negative IOCX_E_* code */
	uint32_t os_code;	/* raw OS code behind status (Windows: the
				   NTSTATUS of the completion, or the WSA
				   error of a failed call); 0 on success */
	size_t payload_sent;	/* first-payload bytes the OS accepted, from
				   the completion entries */
	uint64_t latency_ns;	/* from just before socket creation to the
				   moment the outcome is reported */
	bool fastopen;		/* TCP Fast Open was enabled on the socket */
	bool syn_tuned;		/* the OS took the SYN retransmission tuning */
	unsigned attempts;	/* connect attempts made, 1 without retries
				   (by name: the addresses tried) */
	/*
	 * The address connected to (or, on failure, the last one tried),
	 * with its port: the connection's own copy, valid until on_close
	 * returns; NULL (peer_len 0) when no address was tried.
	 */
	const struct sockaddr *peer;
	uint64_t resolve_ns;	/* time spent resolving the host name, 0
				   for a connect by address or numeric host */
	uint32_t peer_len;
	unsigned addresses_tried;	/* distinct addresses attempted */
	/* Fields of later versions (zero here); 128 bytes in all. */
	uint64_t reserved[9];
};

/*
 * Connect outcome: called exactly once per successful iocx_connect().
 * On success the connection is open until iocx_close(); on failure the
 * socket is already closed and the handle only awaits iocx_close().
 */
typedef void (*iocx_connect_cb)(iocx_conn *conn,
				const struct iocx_connect_result *result,
				void *user);

/*
 * Final callback of a connection.  reason is IOCX_OK after iocx_close(),
 * IOCX_E_SHUTDOWN when iocx_engine_destroy() closed it, IOCX_E_IDLE when
 * the idle watchdog did.  The handle is
 * freed when this returns.
 */
typedef void (*iocx_close_cb)(iocx_conn *conn, int reason, void *user);

enum iocx_payload_ownership {
	/* The engine copies the payload; the caller's buffer is free at once. */
	IOCX_PAYLOAD_COPY = 0,
	/* The caller keeps the buffer alive and unchanged until on_connect. */
	IOCX_PAYLOAD_BORROW = 1,
};

/*
 * Retry policy.  A connect attempt that fails with IOCX_E_REFUSED,
 * IOCX_E_NETUNREACH or IOCX_E_TIMEDOUT is retried on a fresh socket after
 * an exponential backoff with jitter (the delay before attempt n+1 is drawn
 * from [d/2, d] with d = min(backoff_max_ms, backoff_initial_ms * 2^(n-1))),
 * until max_attempts attempts were made.  on_connect reports only the last
 * outcome.  All zero = no retries.
 */
struct iocx_retry {
	unsigned max_attempts;		/* total attempts; 0 or 1 = one attempt */
	uint32_t backoff_initial_ms;	/* 0 = 100 ms */
	uint32_t backoff_max_ms;	/* 0 = 10 s */
};

/* Most attempts a retry policy may ask for. */
#define IOCX_MAX_ATTEMPTS 1000

enum iocx_connect_flags {
	/* Ask for TCP Fast Open; where the OS refuses, connect without it. */
	IOCX_CONNECT_FASTOPEN = 1u << 0,
};

struct iocx_connect_request {
	const struct sockaddr *remote;	/* AF_INET or AF_INET6, required */
	size_t remote_len;
	const struct sockaddr *local;	/* optional bind address, NULL =
					   wildcard of the remote family */
	size_t local_len;
	const void *payload;		/* optional first payload */
	size_t payload_len;
	enum iocx_payload_ownership payload_ownership;
	unsigned flags;			/* IOCX_CONNECT_* */
	iocx_connect_cb on_connect;	/* required */
	iocx_close_cb on_close;		/* optional */
	void *user;			/* passed to both callbacks */
	/*
	 * Deadline of each attempt, in ms, covering the handshake and the
	 * first payload; 0 = none (the OS gives up by itself, about 21 s on
	 * Windows).  On expiry the attempt is cancelled, its socket closed,
	 * and it fails with IOCX_E_TIMEDOUT (retried if the policy says so).
	 */
	uint32_t deadline_ms;
	struct iocx_retry retry;
	/*
	 * Idle watchdog, in ms; 0 = none.  An open connection on which no
	 * data moved (no send completed, nothing received) for this long is
	 * closed by the engine: on_close then reports IOCX_E_IDLE, and the
	 * handle is gone like after any on_close.
	 */
	uint32_t idle_ms;
	/*
	 * SYN retransmission tuning, best effort like TFO (Windows 8 and
	 * later: SIO_TCP_INITIAL_RTO; refused elsewhere, and then the
	 * connect goes on untuned; result.syn_tuned says which).
	 * syn_rtt_ms: the initial round-trip estimate the retransmission
	 * timeout is computed from, 0 = leave the system's.
	 * syn_retransmissions: SYN retransmissions before the OS gives up,
	 * 1..253, IOCX_SYN_NO_RETRANSMISSIONS, or 0 = leave the system's.
	 * A deadline_ms bounds the attempt either way; these make the OS
	 * retry faster (or not at all) inside it.
	 */
	uint16_t syn_rtt_ms;
	uint8_t syn_retransmissions;
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
	 * passes) and each attempt; the retry policy is not applied to a
	 * race.  A failed race reports the last attempt's error; no
	 * address at all gives IOCX_E_NAME or IOCX_E_RESOLVE.  A close or
	 * destroy at any point cancels every query and attempt:
	 * on_connect(IOCX_E_CANCELLED), once.
	 */
	const char *host;
	uint16_t port;
	/*
	 * Room for the fields of later versions (256 bytes in all on 64-bit
	 * targets).  Must be zero: iocx_connect() returns IOCX_E_INVAL
	 * otherwise.  Zero the whole request (memset, or = { 0 } / a
	 * designated initialiser) before filling it in.
	 */
	uint64_t reserved[17];
};

/* syn_retransmissions value: send the SYN once, never again. */
#define IOCX_SYN_NO_RETRANSMISSIONS 255

/* Longest host name a request may give, in bytes (without the NUL). */
#define IOCX_MAX_HOST 253

/*
 * Start a connection.  Validates the request synchronously: NULL engine,
 * request or on_connect, a non-zero reserved word (a field of a later
 * version), neither or both of remote and host, a host that
 * is empty, longer than IOCX_MAX_HOST, or not a host name or numeric
 * address (bytes other than letters, digits, '-', '_' and '.', an empty
 * label or one above 63 bytes, an all-digit last label that is not a
 * dotted-quad IPv4 address, a ':' or '[' that is not a whole IPv6
 * address), payload_len without payload, unknown
 * flags, an unknown payload_ownership, syn_retransmissions 254,
 * retry.max_attempts above
 * IOCX_MAX_ATTEMPTS or a backoff_initial_ms above a non-zero
 * backoff_max_ms give IOCX_E_INVAL; a family other than AF_INET/AF_INET6 (or a local
 * address of another family) IOCX_E_AFNOSUPPORT; a length too short for the
 * family IOCX_E_ADDRLEN; an all-zero remote address or port 0
 * IOCX_E_ADDRNOTAVAIL (also a host with port 0, or a numeric host that is
 * all zero); payload_len above IOCX_MAX_PAYLOAD IOCX_E_MSGSIZE;
 * a host that is a name on an engine without a resolver, or on a backend
 * that cannot race attempts, IOCX_E_NOTSUP;
 * a destroying engine IOCX_E_SHUTDOWN (also when destroy runs concurrently
 * on another thread); the in-flight cap IOCX_E_LIMIT.  Socket set-up
 * failures (socket, bind, port association, a connect the OS rejects at
 * once) are returned the same way, e.g. IOCX_E_PORTS_EXHAUSTED,
 * IOCX_E_AFNOSUPPORT without IPv6, IOCX_E_SYSTEM; a socket the OS cannot
 * create for lack of descriptors (EMFILE, ENFILE; WSAEMFILE, or
 * WSAENOBUFS from socket creation) is IOCX_E_NOFILE, and the engine goes
 * on working: connects succeed again once descriptors are freed.  A
 * retry whose socket cannot be created reports the same code to
 * on_connect.  On IOCX_OK, *out (if not
 * NULL) is set before any callback can run.
 */
IOCX_API int iocx_connect(iocx_engine *engine,
			  const struct iocx_connect_request *req,
			  iocx_conn **out);

enum iocx_close_mode {
	IOCX_CLOSE_GRACEFUL = 0,	/* FIN after data already queued */
	IOCX_CLOSE_ABORT = 1,		/* RST (linger 0) */
};

/*
 * Release a connection.  A pending connect is cancelled (on_connect then
 * reports IOCX_E_CANCELLED, or the real result if it won the race), the
 * socket is closed and on_close follows.  On an open connection a
 * graceful close first lets queued sends go out (FIN after the data), an
 * abortive one cancels them (their on_sent report IOCX_E_CANCELLED) and
 * resets; reading ends with on_recv(IOCX_E_CANCELLED).  A graceful close
 * that waits too long (a peer that stopped reading) can be made abortive
 * by a second call with IOCX_CLOSE_ABORT while it is still in progress
 * (once the socket has been closed, that returns IOCX_E_ALREADY).
 * Callable from any thread and from inside the connection's own
 * callbacks.  Returns IOCX_E_INVAL for a NULL conn or unknown mode,
 * IOCX_E_ALREADY when a close was already requested (and this call is not
 * that upgrade), IOCX_E_SYSTEM when the request could not be queued (it
 * then stays recorded and takes effect at the connection's next event or
 * at destroy).
 */
IOCX_API int iocx_close(iocx_conn *conn, enum iocx_close_mode mode);

/* The user pointer given in the connect request. */
IOCX_API void *iocx_conn_user(const iocx_conn *conn);

/* ---- data on an open connection -------------------------------------- */

/*
 * A send finished: status IOCX_OK with bytes == the length asked, or an
 * error (the connection broke: IOCX_E_RESET, ...; IOCX_E_CANCELLED when an
 * abortive close or destroy dropped it) with the bytes that went out.
 * Called exactly once per send iocx_send() accepted, in the order of the
 * sends, and always before on_close.
 */
typedef void (*iocx_send_cb)(iocx_conn *conn, int status, size_t bytes,
			     void *send_user);

/*
 * Data arrived: status IOCX_OK with data[0..len), valid only during the
 * call (the engine owns the buffer).  Otherwise the end of reading:
 * IOCX_E_EOF (the peer sent FIN), IOCX_E_RESET, another error, or
 * IOCX_E_CANCELLED (close or destroy while reading); reading has stopped
 * then and this is the last call for this read_start.
 */
typedef void (*iocx_recv_cb)(iocx_conn *conn, int status, const void *data,
			     size_t len, void *user);

/*
 * Queue buf[0..len) for sending on an open connection (after on_connect
 * reported IOCX_OK).  Sends leave in order; on_sent is called once each.
 * Ownership as for the first payload: COPY copies now, BORROW keeps the
 * caller's buffer until on_sent.  Any thread, also inside callbacks.
 * Returns IOCX_E_INVAL (NULL conn or on_sent, len 0, NULL buf, bad
 * ownership), IOCX_E_NOTCONN (not open, closing, or shut down for
 * sending), the error that broke the connection, or IOCX_E_NOMEM; then
 * on_sent is not called.
 */
IOCX_API int iocx_send(iocx_conn *conn, const void *buf, size_t len,
		       enum iocx_payload_ownership ownership,
		       iocx_send_cb on_sent, void *send_user);

/*
 * Start reading: on_recv gets the data as it arrives, until iocx_read_stop,
 * EOF, an error or close.  IOCX_E_INVAL for NULL arguments, IOCX_E_NOTCONN
 * when the connection is not open, the error that broke it, or
 * IOCX_E_ALREADY when already reading.
 */
IOCX_API int iocx_read_start(iocx_conn *conn, iocx_recv_cb on_recv);

/*
 * Stop reading.  A receive already in flight is cancelled; data it may
 * still have got is delivered first.  No on_recv call follows the last
 * one the stop caused (IOCX_E_CANCELLED).  IOCX_E_NOTCONN when not
 * reading.
 */
IOCX_API int iocx_read_stop(iocx_conn *conn);

/*
 * Send FIN once every queued send has gone out; further iocx_send calls
 * fail with IOCX_E_NOTCONN.  Reading goes on.  IOCX_E_NOTCONN when not
 * open, the error that broke the connection, IOCX_E_ALREADY when already
 * requested.  The FIN is sent later, on a worker: if the OS refuses it,
 * the connection breaks with the mapped error, and iocx_send and
 * iocx_read_start return that error from then on (a read session already
 * on goes on).
 */
IOCX_API int iocx_shutdown(iocx_conn *conn);

/* ---- statistics ------------------------------------------------------ */

/* Length of iocx_stats.errors, independent of IOCX_ERROR_COUNT. */
#define IOCX_STATS_ERRORS 64

struct iocx_stats {
	uint64_t connects_started;	/* iocx_connect() calls that returned OK */
	uint64_t connects_ok;		/* on_connect with IOCX_OK */
	uint64_t connects_failed;	/* on_connect with an error, incl. cancel */
	uint64_t connects_cancelled;	/* ... of which IOCX_E_CANCELLED */
	uint64_t payload_bytes;		/* first-payload bytes sent */
	uint64_t fastopen_used;		/* connects with TFO enabled */
	uint64_t retries;		/* attempts after the first */
	uint64_t bytes_sent;		/* iocx_send bytes the OS confirmed */
	uint64_t bytes_received;	/* bytes delivered to on_recv */
	uint64_t sockets_recycled;	/* sockets kept after a disconnect */
	uint64_t sockets_reused;	/* connects that took a kept socket */
	uint64_t recycle_fallbacks;	/* reuses the OS refused */
	uint64_t closed;		/* on_close calls */
	uint64_t in_flight;		/* gauge: started, not yet reported */
	uint64_t open;			/* gauge: handles not yet closed */
	/*
	 * on_connect failures by code: errors[-code], code < 0.  Fixed
	 * length: entries from IOCX_ERROR_COUNT on stay 0 until codes are
	 * added there.
	 */
	uint64_t errors[IOCX_STATS_ERRORS];
	/* Counters of later versions (zero here); 1024 bytes in all. */
	uint64_t reserved[49];
};

/*
 * Copy a snapshot of the engine's counters into *out without stopping it.
 * Counters are read one by one (and summed over the worker threads), so a
 * snapshot taken under load may be off by the few operations that
 * completed while it was being taken; gauges never read below 0.  NULL
 * engine or out gives IOCX_E_INVAL.
 */
IOCX_API int iocx_engine_stats(const iocx_engine *engine,
			       struct iocx_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* IOCX_H */
