/*
 * iocx_connect(): request validation and the start of a connection.
 *
 * Everything that can be checked without the OS is checked here, before
 * anything is allocated, so bad input changes nothing.  Then the socket is
 * opened on the caller's thread and the connect is issued there too: the
 * OS keeps I/O of a port-associated socket alive after its issuing thread
 * exits, and a synchronous failure can still be returned to the caller.
 */
#include <limits.h>
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

#include "abi.h"
#include "conn.h"
#include "name.h"
#include "race.h"

#define DEFAULT_BACKOFF_INITIAL_MS 100
#define DEFAULT_BACKOFF_MAX_MS 10000

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return false;
	}
	return true;
}

/* :: or ::ffff:0.0.0.0 (the v4-mapped form of 0.0.0.0). */
static bool is_unspecified6(const struct sockaddr_in6 *in6)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const unsigned char *a = (const unsigned char *)&in6->sin6_addr;

	return is_zero(a + 12, 4) &&
	       (is_zero(a, 12) || memcmp(a, mapped, sizeof(mapped)) == 0);
}

/*
 * Check an address and return its exact length for its family (> 0), or
 * a negative error.  A remote address must name a real host and port.
 */
static int address_length(const struct sockaddr *sa, size_t len, bool remote)
{
	if (!sa)
		return IOCX_E_INVAL;
	if (len < offsetof(struct sockaddr, sa_family) + sizeof(sa->sa_family))
		return IOCX_E_ADDRLEN;

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		if (len < sizeof(*in))
			return IOCX_E_ADDRLEN;
		if (remote && (in->sin_port == 0 ||
			       is_zero(&in->sin_addr, sizeof(in->sin_addr))))
			return IOCX_E_ADDRNOTAVAIL;
		return (int)sizeof(*in);
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (len < sizeof(*in6))
			return IOCX_E_ADDRLEN;
		if (remote && (in6->sin6_port == 0 || is_unspecified6(in6)))
			return IOCX_E_ADDRNOTAVAIL;
		return (int)sizeof(*in6);
	}
	default:
		return IOCX_E_AFNOSUPPORT;
	}
}

/* The checks that do not depend on how the peer is named. */
static int validate_common(const struct iocx_connect_request *req)
{
	if (!req->on_connect)
		return IOCX_E_INVAL;
	/* A field of a later version this library does not know. */
	if (!iocx__reserved_zero(req->reserved, IOCX__NWORDS(req->reserved)))
		return IOCX_E_INVAL;
	if (req->payload_len > 0 && !req->payload)
		return IOCX_E_INVAL;
	if (req->flags & ~(unsigned)IOCX_CONNECT_FASTOPEN)
		return IOCX_E_INVAL;
	if (req->payload_ownership != IOCX_PAYLOAD_COPY &&
	    req->payload_ownership != IOCX_PAYLOAD_BORROW)
		return IOCX_E_INVAL;
	if (req->retry.max_attempts > IOCX_MAX_ATTEMPTS ||
	    req->syn_retransmissions == 254)
		return IOCX_E_INVAL;
	if (req->retry.backoff_max_ms &&
	    req->retry.backoff_initial_ms > req->retry.backoff_max_ms)
		return IOCX_E_INVAL;
	return IOCX_OK;
}

static int validate(const struct iocx_connect_request *req,
		    int *remote_len, int *local_len)
{
	int rc = validate_common(req);

	if (rc != IOCX_OK)
		return rc;
	if (!req->remote)
		return IOCX_E_INVAL;
	*remote_len = address_length(req->remote, req->remote_len, true);
	if (*remote_len < 0)
		return *remote_len;
	*local_len = 0;
	if (req->local) {
		*local_len = address_length(req->local, req->local_len, false);
		if (*local_len < 0)
			return *local_len;
		if (req->local->sa_family != req->remote->sa_family)
			return IOCX_E_AFNOSUPPORT;
	}
	if (req->payload_len > IOCX_MAX_PAYLOAD)
		return IOCX_E_MSGSIZE;
	return IOCX_OK;
}

/* See conn.h. */
const struct iocx_conn_opts iocx__conn_opts_default = {
	.retry = {
		.max_attempts = 1,
		.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS,
		.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS,
	},
};

/* Does req set an option struct iocx_conn_opts holds? */
static bool wants_opts(const struct iocx_connect_request *req)
{
	return req->retry.max_attempts || req->retry.backoff_initial_ms ||
	       req->retry.backoff_max_ms || req->total_deadline_ms ||
	       req->syn_rtt_ms || req->syn_retransmissions || req->on_socket ||
	       req->local;
}

/* Fill c's struct iocx_conn_opts from req, the retry policy resolved. */
static void opts_init(struct iocx_conn_opts *o,
		      const struct iocx_connect_request *req, int local_len)
{
	memset(o, 0, sizeof(*o));	/* total_at: set by start_connect */
	if (local_len > 0)	/* validated */
		memcpy(&o->local, req->local, (size_t)local_len);
	o->syn_rtt_ms = req->syn_rtt_ms;
	o->syn_retransmissions = req->syn_retransmissions;
	o->on_socket = req->on_socket;
	o->retry = req->retry;
	/* A total deadline bounds the attempts by itself (iocx.h). */
	if (o->retry.max_attempts == 0)
		o->retry.max_attempts = req->total_deadline_ms ? UINT_MAX : 1;
	if (o->retry.backoff_initial_ms == 0)
		o->retry.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
	if (o->retry.backoff_max_ms == 0)
		o->retry.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	if (o->retry.backoff_initial_ms > o->retry.backoff_max_ms)
		o->retry.backoff_initial_ms = o->retry.backoff_max_ms;
}

static struct iocx_conn *conn_alloc(iocx_engine *e,
				    const struct iocx_connect_request *req,
				    int remote_len, int local_len)
{
	bool opts = wants_opts(req);
	/* The backend's struct, then the options, then the payload copy;
	 * conn_size keeps the options aligned (a multiple of 8). */
	size_t base = e->backend->conn_size;
	size_t extra = opts ? sizeof(struct iocx_conn_opts) : 0;
	bool copy = req->payload_ownership == IOCX_PAYLOAD_COPY;
	struct iocx_conn *c;

	c = iocx__alloc(base + extra + (copy ? req->payload_len : 0));
	if (!c)
		return NULL;
	memset(c, 0, base);
	if (opts)
		opts_init((struct iocx_conn_opts *)((char *)c + base), req,
			  local_len);
	c->has_opts = opts;
	c->engine = e;
	iocx__lock_init(&c->lock);
	atomic_init(&c->refs, 1);	/* alive until on_close returns */
	atomic_init(&c->close_request, CONN_CLOSE_NONE);
	atomic_init(&c->life, 0);
	atomic_init(&c->shutdown_missed, false);
	atomic_init(&c->req_touched, false);
	atomic_init(&c->open_for_send, false);
	atomic_init(&c->open_for_read, false);
	atomic_init(&c->aq_granted, false);
	atomic_init(&c->pq_wake, false);
	c->state = (uint8_t)CONN_NEW;
	c->on_connect = req->on_connect;
	c->on_close = req->on_close;
	c->user = req->user;
	c->flags = req->flags;
	if (remote_len > 0)	/* none yet for a name */
		memcpy(&c->remote, req->remote, (size_t)remote_len);
	c->remote_len = remote_len;
	if (local_len > 0)
		c->local = &iocx__conn_opts(c)->local;
	c->local_len = local_len;
	c->deadline_ms = req->deadline_ms;
	c->idle_ms = req->idle_ms;
	atomic_init(&c->data, NULL);
	/* on_drained lives in the data block: a request that asks for it
	 * gets the block now (freed by conn_free_unstarted on failure). */
	if (req->on_drained) {
		if (!iocx__conn_data_make(c)) {
			iocx__lock_destroy(&c->lock);
			iocx__free(c);
			return NULL;
		}
		iocx__conn_data(c)->on_drained = req->on_drained;
	}
	atomic_init(&c->exposed, false);
	c->handle = IOCX_INVALID_SOCKET;
	c->payload_len = (uint32_t)req->payload_len;	/* validated */
	if (copy && req->payload_len > 0) {
		memcpy((char *)c + base + extra, req->payload,
		       req->payload_len);
		c->payload = (const unsigned char *)c + base + extra;
	} else {
		c->payload = req->payload;
	}
	return c;
}

/* Undo conn_alloc and what followed, for a connection never adopted. */
static void conn_free_unstarted(struct iocx_conn *c)
{
	if (c->uses_timer)
		iocx__engine_timer_release(c->engine);
	iocx__race_free(c);
	iocx__lock_destroy(&c->lock);
	iocx__conn_data_free(c);
	iocx__free(c);
}

/*
 * iocx_connect() once the request is valid and the engine entered.  The
 * connection is adopted before it starts, so destroy reaches it wherever
 * it waits; the start (conn.c) takes its in-flight slot or queues it, and
 * opens the first attempt's socket on this thread unless it must wait (or
 * resolves a name: the race opens sockets once addresses are in).
 */
static int start_connect(iocx_engine *e,
			 const struct iocx_connect_request *req,
			 int remote_len, int local_len, iocx_conn **out)
{
	struct iocx_counters *set = iocx__counters(e);
	struct iocx_conn *c, *old_out = out ? *out : NULL;
	int rc;

	c = conn_alloc(e, req, remote_len, local_len);
	if (!c)
		return IOCX_E_NOMEM;
	iocx__conn_ref(c);	/* the program's, until its release */
	if (req->host) {
		rc = iocx__race_create(c, req->host, req->port);
		if (rc != IOCX_OK)
			goto err_free;
		if (e->backend->attach)
			e->backend->attach(c);
	}
	if (c->deadline_ms || c->idle_ms ||
	    iocx__conn_opts(c)->retry.max_attempts > 1 ||
	    req->total_deadline_ms || e->opts.connect_rate || c->race) {
		rc = iocx__engine_timer_reserve(e);
		if (rc != IOCX_OK)
			goto err_free;
		c->uses_timer = true;
	}
	c->t_start = e->clock();
	if (req->total_deadline_ms)	/* has_opts: wants_opts() */
		((struct iocx_conn_opts *)iocx__conn_opts(c))->total_at =
			c->t_start +
			(uint64_t)req->total_deadline_ms * 1000000u;
	if (!iocx__engine_adopt(e, c)) {
		rc = IOCX_E_SHUTDOWN;
		goto err_free;
	}

	iocx__count(&set->connects_started, 1);
	iocx__count(&set->open, 1);
	if (out)
		*out = c;	/* before any callback can run */
	/*
	 * Ours until we return: an on_connect on a worker may close c (the
	 * program's release) and its on_close return before the start
	 * below has even unlocked c; the memory still outlives this call.
	 */
	iocx__conn_ref(c);
	rc = iocx__conn_start(c);
	if (rc == IOCX_OK) {
		iocx__conn_unref(c);
		return IOCX_OK;
	}

	/* The start failed synchronously: no socket is left, no slot held,
	 * the state is CLOSED; undo the accounting and drop the references
	 * (ours, the program's, alive). */
	if (out)
		*out = old_out;
	iocx__set_last_os_error(c->os_code);
	iocx__uncount(&set->connects_started, 1);
	iocx__uncount(&set->open, 1);
	iocx__conn_unref(c);
	iocx__conn_unref(c);
	iocx__conn_unref(c);
	return rc;

err_free:
	conn_free_unstarted(c);
	return rc;
}

/* See conn.h. */
int iocx__conn_spawn(struct iocx_conn *parent,
		     const struct sockaddr_storage *addr, int len,
		     iocx_connect_cb on_connect, iocx_close_cb on_close,
		     void *user, struct iocx_conn **out)
{
	struct iocx_engine *e = parent->engine;
	struct iocx_connect_request req = {
		.remote = (const struct sockaddr *)addr,
		.remote_len = (size_t)len,
		.on_connect = on_connect,
		.on_close = on_close,
		.user = user,
		.deadline_ms = parent->deadline_ms,
		.syn_rtt_ms = iocx__conn_opts(parent)->syn_rtt_ms,
		.syn_retransmissions =
			iocx__conn_opts(parent)->syn_retransmissions,
		/* The hook runs on every attempt's socket (race.c gives it
		 * the parent's user). */
		.on_socket = iocx__conn_opts(parent)->on_socket,
	};
	int local_len = 0;
	struct iocx_conn *c;
	int rc;

	/* The parent's own local address, when it is of this family. */
	if (parent->local_len && !parent->local_from_sources &&
	    parent->local->sa.sa_family == addr->ss_family) {
		req.local = &parent->local->sa;
		local_len = parent->local_len;
	}
	c = conn_alloc(e, &req, len, local_len);
	if (!c)
		return IOCX_E_NOMEM;
	c->child = true;
	if (c->deadline_ms) {
		rc = iocx__engine_timer_reserve(e);
		if (rc != IOCX_OK)
			goto err_free;
		c->uses_timer = true;
	}
	c->t_start = e->clock();
	if (!iocx__engine_adopt(e, c)) {
		rc = IOCX_E_SHUTDOWN;
		goto err_free;
	}
	iocx__conn_ref(c);	/* the caller's */
	*out = c;
	rc = iocx__conn_start(c);
	if (rc == IOCX_OK)
		return IOCX_OK;
	parent->os_code = c->os_code;
	*out = NULL;
	iocx__conn_unref(c);	/* the caller's */
	iocx__conn_unref(c);	/* alive: frees it */
	return rc;

err_free:
	parent->os_code = c->os_code;
	conn_free_unstarted(c);
	return rc;
}

/*
 * A request naming its peer by host: a numeric host becomes a request by
 * address in *copy (req then points to it), so it connects exactly like
 * one (IOCX_OK).  A name is checked as far as it can be without
 * resolving it (IOCX__HOST_NAME).
 */
static int host_to_remote(const struct iocx_connect_request **req,
			  struct iocx_connect_request *copy,
			  struct sockaddr_storage *addr)
{
	int len, rc;

	if ((*req)->remote)
		return IOCX_E_INVAL;	/* remote and host: which one? */
	rc = iocx__host_parse((*req)->host, (*req)->port, addr, &len);
	if (rc < 0)
		return rc;
	if (rc == IOCX__HOST_NUMERIC) {
		*copy = **req;
		copy->remote = (const struct sockaddr *)addr;
		copy->remote_len = (size_t)len;
		copy->host = NULL;
		*req = copy;
		return IOCX_OK;
	}
	rc = validate_common(*req);
	if (rc != IOCX_OK)
		return rc;
	if ((*req)->port == 0)
		return IOCX_E_ADDRNOTAVAIL;
	return IOCX__HOST_NAME;
}

/* iocx_connect() of a valid request by name. */
static int connect_by_name(iocx_engine *e,
			   const struct iocx_connect_request *req,
			   iocx_conn **out)
{
	int local_len = 0, rc;

	if (req->local) {
		local_len = address_length(req->local, req->local_len, false);
		if (local_len < 0)
			return local_len;
	}
	if (req->payload_len > IOCX_MAX_PAYLOAD)
		return IOCX_E_MSGSIZE;
	/* Racing needs a resolver and a backend that can hand a socket
	 * from an attempt to the connection (docs/names.md). */
	if (!e->opts.resolver || !e->backend->adopt)
		return IOCX_E_NOTSUP;
	if (!iocx__engine_enter(e))
		return IOCX_E_SHUTDOWN;
	rc = start_connect(e, req, 0, local_len, out);
	iocx__engine_leave(e);
	return rc;
}

/* See iocx.h. */
int iocx_connect(iocx_engine *e, const struct iocx_connect_request *req,
		 iocx_conn **out)
{
	struct iocx_connect_request copy;
	struct sockaddr_storage addr;
	int remote_len, local_len, rc;

	iocx__set_last_os_error(0);
	if (!e || !req)
		return IOCX_E_INVAL;
	if (req->host) {
		rc = host_to_remote(&req, &copy, &addr);
		if (rc == IOCX__HOST_NAME)
			return connect_by_name(e, req, out);
		if (rc != IOCX_OK)
			return rc;
	}
	rc = validate(req, &remote_len, &local_len);
	if (rc != IOCX_OK)
		return rc;
	if (!iocx__engine_enter(e))
		return IOCX_E_SHUTDOWN;
	rc = start_connect(e, req, remote_len, local_len, out);
	iocx__engine_leave(e);
	return rc;
}
