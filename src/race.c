/*
 * Connects by host name: resolver queries and the Happy Eyeballs v2 race
 * (RFC 8305).  See race.h for the threading and docs/names.md for the
 * design.
 *
 * Ownership.  The race belongs to its parent connection and is freed with
 * it (at its last reference).  Every query out holds a reference on the
 * parent until its answer's KICK has been handled, and so does every
 * attempt until its close's KICK has been handled: whatever arrives late
 * finds the parent and the race in memory.  The parent holds a reference
 * on every attempt until it has seen it closed (or until the race is
 * freed), so it may lock or close an attempt at any time.
 *
 * Fields under "mailbox" are written by resolvers and attempts under
 * race->lock, a leaf lock; everything else is the parent's, under its
 * conn->lock.
 *
 * Rounds.  The retry policy may race a name again (conn.c): a race
 * reports RACE_FAILED only once every query is answered and every
 * attempt has closed, so nothing of it can arrive later, and the next
 * race (iocx__race_begin again) starts from a clean slate with fresh
 * queries.
 *
 * Pacing.  With connect_rate each attempt takes a pacing turn
 * (admission.c) for the parent, which holds the in-flight slot: one whose
 * turn has not come waits, the parent in the pacing FIFO (still RACING,
 * its timer on the turn when it is the FIFO's head, else woken by the
 * KICK of the head before it).  The Connection Attempt Delay runs from
 * when the previous attempt really started.
 */
#include <string.h>

#include "admission.h"
#include "engine.h"
#include "histogram.h"
#include "name_cache.h"
#include "race.h"

#define FAMILIES 2
#define MAX_RACE_ATTEMPTS (FAMILIES * IOCX_MAX_ADDRESSES)
#define MS 1000000u

struct iocx_query {
	struct iocx_race *race;
	int family;
	void *slot;			/* the engine's own resolver's */
};

struct answer {
	/* mailbox */
	bool arrived;
	int status;
	uint32_t os_code;
	size_t n;
	struct sockaddr_storage addrs[IOCX_MAX_ADDRESSES];
};

struct attempt {
	struct iocx_race *race;
	struct iocx_conn *conn;		/* referenced until released */
	/* mailbox */
	bool outcome;			/* on_connect came */
	int status;
	uint32_t os_code;
	bool closed;			/* on_close came */
	/* parent's */
	bool seen;			/* outcome taken in */
	bool close_asked;
	bool released;			/* reference dropped */
};

struct iocx_race {
	struct iocx_conn *parent;
	iocx_mutex lock;
	struct iocx_query q[FAMILIES];	/* [0] AAAA (AF_INET6), [1] A */
	struct answer ans[FAMILIES];
	struct attempt att[MAX_RACE_ATTEMPTS];

	/* parent's */
	bool started[FAMILIES];		/* query out */
	bool cached[FAMILIES];		/* answered from the engine's cache:
					   the resolver never saw it */
	bool done[FAMILIES];		/* answered (or never asked) */
	bool cancel_asked[FAMILIES];
	uint64_t done_at[FAMILIES];
	size_t next[FAMILIES];		/* first address not yet tried */
	unsigned natt;
	int last;			/* family index of the last attempt,
					   -1 before the first */
	uint64_t last_start;
	uint64_t begun;			/* engine clock when the queries went */
	uint64_t resolve_ns;		/* for the result (resolved()) */
	unsigned addresses_tried;	/* for the result, every race */
	unsigned rounds;		/* races begun */
	bool racing;
	bool direct;			/* one address: connected to as by
					   address */
	bool resolve_expired;		/* deadline_ms passed while resolving:
					   fails once the queries are back */
	bool started_any;		/* an attempt started (in any race) */
	bool pacing;			/* the next attempt waits for its
					   pacing turn */
	bool retry_ok;			/* every failure of this race is one
					   the retry policy retries */
	int fail_status;		/* the last failure, for the report */
	uint32_t fail_os;
	uint16_t port;
	char host[];
};

static int index_of(int family)
{
	return family == AF_INET6 ? 0 : 1;
}

static int family_of(int index)
{
	return index == 0 ? AF_INET6 : AF_INET;
}

static int addr_len(int family)
{
	return family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
				  : (int)sizeof(struct sockaddr_in);
}

/*
 * Wake c to look at its mailbox; the posted KICK uses up one reference
 * the caller holds on c.  If the post fails, c learns of it at its next
 * event (a timer, another answer or attempt, a close).
 */
static void wake(struct iocx_conn *c)
{
	if (c->engine->backend->post(c->engine, IOCX_EV_KICK, c) != IOCX_OK)
		iocx__conn_unref(c);
}

/* See race.h. */
int iocx__race_create(struct iocx_conn *c, const char *host, uint16_t port)
{
	size_t len = strlen(host) + 1;
	struct iocx_race *r = iocx__alloc(sizeof(*r) + len);

	if (!r)
		return IOCX_E_NOMEM;
	memset(r, 0, sizeof(*r));
	iocx__mutex_init(&r->lock);
	r->parent = c;
	r->last = -1;
	r->port = port;
	r->fail_status = IOCX_E_NAME;
	r->retry_ok = true;
	memcpy(r->host, host, len);
	for (int i = 0; i < FAMILIES; i++) {
		r->q[i].race = r;
		r->q[i].family = family_of(i);
	}
	c->race = r;
	return IOCX_OK;
}

/* Arm c's timer for when (0 = leave it disarmed). */
static void arm(struct iocx_conn *c, uint64_t when)
{
	iocx__engine_disarm(c->engine, c);
	if (when)
		iocx__engine_arm(c->engine, c, when);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

/* Wait until when (0 = for an event), or the total deadline if sooner. */
static void wait_until(struct iocx_conn *c, uint64_t when)
{
	arm(c, earliest(when, iocx__conn_opts(c)->total_at));
}

/* When resolution must be over: deadline_ms after the queries went out,
 * 0 = never (the total deadline bounds it separately). */
static uint64_t resolve_deadline(const struct iocx_conn *c)
{
	return c->deadline_ms ? c->race->begun + (uint64_t)c->deadline_ms * MS
			      : 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port);

/*
 * Answer family i from the engine's cache, if it holds it (addresses, or
 * a negative answer: IOCX_E_NAME): the answer goes into the mailbox and c
 * is woken, as a resolver's answer would be (never handled inside
 * iocx_connect).  Returns whether it did.
 */
static bool from_cache(struct iocx_race *r, struct iocx_conn *c, int i)
{
	struct iocx_name_cache *nc = c->engine->names;
	struct answer *a = &r->ans[i];
	uint32_t os_code = 0;
	int got;

	if (!nc)
		return false;
	iocx__mutex_lock(&r->lock);
	got = iocx__name_cache_get(nc, r->host, family_of(i), r->begun,
				   a->addrs, &os_code);
	if (got != 0) {
		/* A negative answer: no address, the name's error. */
		a->n = got > 0 ? (size_t)got : 0;
		for (size_t k = 0; k < a->n; k++)
			set_port(&a->addrs[k], r->port);
		a->status = got > 0 ? IOCX_OK : IOCX_E_NAME;
		a->os_code = got > 0 ? 0 : os_code;
		a->arrived = true;
	}
	iocx__mutex_unlock(&r->lock);
	if (got == 0)
		return false;
	r->started[i] = true;
	r->cached[i] = true;
	iocx__conn_ref(c);	/* the KICK's, as a query's */
	wake(c);
	return true;
}

/*
 * Forget the race before (RACE_FAILED: every query answered, every
 * attempt closed and released, so nothing writes the mailbox any more)
 * for the next one.  The totals for the result stay.
 */
static void new_round(struct iocx_race *r)
{
	iocx__mutex_lock(&r->lock);
	for (int i = 0; i < FAMILIES; i++) {
		r->ans[i].arrived = false;
		r->ans[i].n = 0;
		r->ans[i].status = IOCX_OK;
		r->ans[i].os_code = 0;
		r->started[i] = false;
		r->cached[i] = false;
		r->done[i] = false;
		r->cancel_asked[i] = false;
		r->done_at[i] = 0;
		r->next[i] = 0;
	}
	memset(r->att, 0, r->natt * sizeof(r->att[0]));
	iocx__mutex_unlock(&r->lock);
	r->natt = 0;
	r->last = -1;
	r->last_start = 0;
	r->racing = false;
	r->resolve_expired = false;
	r->fail_status = IOCX_E_NAME;
	r->fail_os = 0;
	r->retry_ok = true;
}

/* See race.h. */
int iocx__race_begin(struct iocx_conn *c)
{
	struct iocx_race *r = c->race;
	const struct iocx_resolver *res = c->engine->opts.resolver;
	int rc = IOCX_OK;
	bool any = false;

	if (r->rounds++ > 0)
		new_round(r);
	r->begun = c->engine->clock();
	for (int i = 0; i < FAMILIES; i++) {
		/* A local address of one family leaves only that family. */
		if (c->local_len && !c->local_from_sources &&
		    c->local->sa.sa_family != family_of(i)) {
			r->done[i] = true;
			continue;
		}
		if (from_cache(r, c, i)) {
			any = true;
			continue;
		}
		iocx__conn_ref(c);	/* the query's */
		rc = res->start(res->ctx, r->host, family_of(i), &r->q[i]);
		if (rc != IOCX_OK) {
			iocx__conn_unref(c);
			r->done[i] = true;
			r->fail_status = IOCX_E_RESOLVE;
			continue;
		}
		r->started[i] = true;
		any = true;
	}
	if (!any)
		return rc;
	wait_until(c, resolve_deadline(c));
	return IOCX_OK;
}

/* The resolver's status as the connect result reports it. */
static int answer_status(int status, size_t n)
{
	if (status == IOCX_OK)
		return n > 0 ? IOCX_OK : IOCX_E_NAME;
	if (status == IOCX_E_NAME || status == IOCX_E_CANCELLED)
		return status;
	return IOCX_E_RESOLVE;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
	unsigned char *p = ss->ss_family == AF_INET6
		? (unsigned char *)&in6->sin6_port
		: (unsigned char *)&in->sin_port;

	p[0] = (unsigned char)(port >> 8);
	p[1] = (unsigned char)port;
}

/* See iocx.h. */
void iocx_query_done(iocx_query *q, int status, uint32_t os_code,
		     const struct sockaddr_storage *addrs, size_t n)
{
	iocx_query_done_ttl(q, status, os_code, addrs, n, 0);
}

/*
 * Keep q's answer in the engine's cache, if it has one: addresses for
 * their TTL; a negative answer (RFC 2308: NXDOMAIN, or no address of the
 * family) for the resolver's negative TTL, IOCX_RESOLVE_NEGATIVE_TTL when
 * it gave none; both cut to resolve_cache_ttl_max.  A failure (SERVFAIL,
 * timeout) or a cancel is never kept: the next connect asks again.
 */
static void keep(struct iocx_race *r, int family, int status,
		 uint32_t os_code, const struct sockaddr_storage *addrs,
		 size_t n, uint32_t ttl_s)
{
	struct iocx_engine *e = r->parent->engine;
	uint32_t cap = e->opts.resolve_cache_ttl_max;
	uint64_t expires;
	size_t k = 0;
	bool negative;

	if (!e->names)
		return;
	for (size_t i = 0; addrs && i < n; i++)
		k += addrs[i].ss_family == family;
	negative = status == IOCX_E_NAME || (status == IOCX_OK && k == 0);
	if (!negative && (status != IOCX_OK || ttl_s == 0))
		return;
	if (negative && ttl_s == 0)
		ttl_s = IOCX_RESOLVE_NEGATIVE_TTL;
	if (cap && ttl_s > cap)
		ttl_s = cap;
	expires = e->clock() + (uint64_t)ttl_s * 1000000000u;
	if (negative)
		iocx__name_cache_put_negative(e->names, r->host, family,
					      os_code, expires);
	else
		iocx__name_cache_put(e->names, r->host, family, addrs, n,
				     expires);
}

/* See iocx.h. */
void iocx_query_done_ttl(iocx_query *q, int status, uint32_t os_code,
			 const struct sockaddr_storage *addrs, size_t n,
			 uint32_t ttl_s)
{
	struct iocx_race *r;
	struct answer *a;
	size_t k = 0;

	if (!q)
		return;
	r = q->race;
	/* Before the wake: the query's reference keeps r alive until it. */
	keep(r, q->family, status, os_code, addrs, n, ttl_s);
	a = &r->ans[index_of(q->family)];
	iocx__mutex_lock(&r->lock);
	for (size_t i = 0; addrs && status == IOCX_OK && i < n &&
			   k < IOCX_MAX_ADDRESSES; i++) {
		if (addrs[i].ss_family != q->family)
			continue;
		memset(&a->addrs[k], 0, sizeof(a->addrs[k]));
		memcpy(&a->addrs[k], &addrs[i],
		       (size_t)addr_len(q->family));
		set_port(&a->addrs[k], r->port);
		k++;
	}
	a->n = k;
	a->status = answer_status(status, k);
	a->os_code = os_code;
	a->arrived = true;
	iocx__mutex_unlock(&r->lock);
	wake(r->parent);	/* with the query's reference */
}

/* An attempt's on_connect (on its worker, its lock held). */
static void attempt_connected(iocx_conn *child,
			      const struct iocx_connect_result *res,
			      void *user)
{
	struct attempt *a = user;
	struct iocx_race *r = a->race;

	iocx__mutex_lock(&r->lock);
	a->outcome = true;
	a->status = res->status;
	a->os_code = res->os_code;
	iocx__mutex_unlock(&r->lock);
	if (res->status != IOCX_OK)
		iocx_close(child, IOCX_CLOSE_ABORT);
	iocx__conn_ref(r->parent);	/* the KICK's */
	wake(r->parent);
}

/* An attempt's on_close: its last word; the KICK uses up the parent
 * reference it held since it started. */
static void attempt_closed(iocx_conn *child, int reason, void *user)
{
	struct attempt *a = user;
	struct iocx_race *r = a->race;
	struct iocx_conn *parent = r->parent;

	(void)child;
	(void)reason;
	iocx__mutex_lock(&r->lock);
	a->closed = true;
	iocx__mutex_unlock(&r->lock);
	wake(parent);
}

/* Take in what arrived: answers, attempt outcomes and closes. */
static void take_mailbox(struct iocx_race *r, uint64_t now)
{
	struct iocx_conn *gone[MAX_RACE_ATTEMPTS];
	unsigned ngone = 0;

	iocx__mutex_lock(&r->lock);
	for (int i = 0; i < FAMILIES; i++) {
		if (r->started[i] && !r->done[i] && r->ans[i].arrived) {
			r->done[i] = true;
			r->done_at[i] = now;
			if (r->ans[i].status != IOCX_OK &&
			    r->ans[i].status != IOCX_E_CANCELLED &&
			    r->fail_status != IOCX_E_RESOLVE) {
				r->fail_status = r->ans[i].status;
				r->fail_os = r->ans[i].os_code;
			}
		}
	}
	for (unsigned k = 0; k < r->natt; k++) {
		struct attempt *a = &r->att[k];

		if (a->outcome && !a->seen) {
			a->seen = true;
			if (a->status != IOCX_OK) {
				r->fail_status = a->status;
				r->fail_os = a->os_code;
				if (!iocx__conn_retryable(a->status))
					r->retry_ok = false;
			}
		}
		if (a->closed && !a->released) {
			a->released = true;
			gone[ngone++] = a->conn;
			a->conn = NULL;
		}
	}
	iocx__mutex_unlock(&r->lock);
	/* Outside the leaf lock: the last drop frees the attempt. */
	for (unsigned k = 0; k < ngone; k++)
		iocx__conn_unref(gone[k]);
}

static void close_attempt(struct attempt *a)
{
	if (a->released || a->close_asked)
		return;
	a->close_asked = true;
	iocx_close(a->conn, IOCX_CLOSE_ABORT);
}

static void cancel_queries(struct iocx_race *r, struct iocx_conn *c)
{
	const struct iocx_resolver *res = c->engine->opts.resolver;

	for (int i = 0; i < FAMILIES; i++) {
		if (r->started[i] && !r->done[i] && !r->cancel_asked[i] &&
		    !r->cached[i]) {
			r->cancel_asked[i] = true;
			res->cancel(res->ctx, &r->q[i]);
		}
	}
}

/* Leave the pacing FIFO, where c waits for its next attempt's turn. */
static void stop_pacing(struct iocx_race *r, struct iocx_conn *c)
{
	r->pacing = false;
	if (c->pq_in)
		iocx__admission_unpace(c->engine, c);
}

/* Stop everything still running: queries, attempts and a pacing wait. */
static void stop_all(struct iocx_race *r, struct iocx_conn *c)
{
	cancel_queries(r, c);
	for (unsigned k = 0; k < r->natt; k++)
		close_attempt(&r->att[k]);
	stop_pacing(r, c);
}

/* Every attempt started has closed and been released. */
static bool all_released(const struct iocx_race *r)
{
	for (unsigned k = 0; k < r->natt; k++) {
		if (!r->att[k].released)
			return false;
	}
	return true;
}

static bool queries_out(const struct iocx_race *r)
{
	for (int i = 0; i < FAMILIES; i++) {
		if (r->started[i] && !r->done[i])
			return true;
	}
	return false;
}

/* Attempts started whose outcome has not come in. */
static unsigned running(const struct iocx_race *r)
{
	unsigned n = 0;

	for (unsigned k = 0; k < r->natt; k++)
		n += !r->att[k].seen;
	return n;
}

static size_t untried(const struct iocx_race *r, int i)
{
	return r->done[i] ? r->ans[i].n - r->next[i] : 0;
}

/*
 * Take the socket of a connected attempt into c.  The attempt must still
 * be open and not closing (destroy may be closing it); it is closed
 * either way, without its socket when c took it.
 */
static bool take_winner(struct iocx_conn *c, struct attempt *a)
{
	struct iocx_conn *w = a->conn;
	bool ok = false;

	iocx__lock_acquire(&w->lock);
	if (w->state == CONN_OPEN && !w->shutdown &&
	    atomic_load(&w->close_request) == CONN_CLOSE_NONE &&
	    c->engine->backend->adopt(c, w) == IOCX_OK) {
		w->socket_moved = true;
		memcpy(&c->remote, &w->remote, sizeof(c->remote));
		c->remote_len = w->remote_len;
		c->syn_tuned = w->syn_tuned;
		ok = true;
	}
	iocx__lock_release(&w->lock);
	close_attempt(a);
	return ok;
}

/* Start the next attempt: alternate families, preferred one first. */
static void start_attempt(struct iocx_race *r, struct iocx_conn *c,
			  uint64_t now)
{
	int pref = index_of(c->engine->opts.prefer_family);
	int i = r->last < 0 ? pref : 1 - r->last;
	struct attempt *a;
	int rc;

	if (untried(r, i) == 0)
		i = 1 - i;
	a = &r->att[r->natt++];
	a->race = r;
	r->last = i;
	r->last_start = now;
	r->addresses_tried++;
	if (!r->started_any) {
		/* latency_ns: from the first socket, after resolution and
		 * any pacing wait, as for a connect by address. */
		r->started_any = true;
		c->t_start = now;
	}
	iocx__conn_ref(c);	/* the attempt's, until its close */
	rc = iocx__conn_spawn(c, &r->ans[i].addrs[r->next[i]++],
			      addr_len(family_of(i)), attempt_connected,
			      attempt_closed, a, &a->conn);
	if (rc != IOCX_OK) {
		iocx__conn_unref(c);
		a->seen = true;
		a->status = rc;
		a->released = true;
		a->close_asked = true;
		r->fail_status = rc;
		r->fail_os = c->os_code;
		if (!iocx__conn_retryable(rc))
			r->retry_ok = false;
	}
}

/*
 * May the next attempt start now, at its pacing turn (always, unpaced)?
 * If not, c waits in the pacing FIFO and *due is when to look again (0:
 * the KICK of the waiter before it says).
 */
static bool take_turn(struct iocx_race *r, struct iocx_conn *c,
		      uint64_t now, uint64_t *due)
{
	if (iocx__admission_pace(c->engine, c, now, due)) {
		r->pacing = false;
		return true;
	}
	if (!r->pacing) {
		r->pacing = true;
		iocx__count(&iocx__counters(c->engine)->paced, 1);
	}
	return false;
}

/* Resolution is over with exactly one address: connect to it directly. */
static void take_single(struct iocx_race *r, struct iocx_conn *c)
{
	int i = r->ans[0].n ? 0 : 1;

	memcpy(&c->remote, &r->ans[i].addrs[0], sizeof(c->remote));
	c->remote_len = addr_len(family_of(i));
	r->addresses_tried++;
	r->next[i] = 1;
	r->direct = true;
}

/* Resolution is over (addresses to try): note and record its time. */
static void resolved(struct iocx_race *r, struct iocx_conn *c, uint64_t now)
{
	r->resolve_ns += now - r->begun;
	iocx__hist_record(iocx__counters(c->engine)->resolve,
			  now - r->begun);
}

/* While RESOLVING: may the race start?  Sets *when for the next look. */
static bool may_start(struct iocx_race *r, struct iocx_conn *c,
		      uint64_t now, uint64_t *when)
{
	int p = index_of(c->engine->opts.prefer_family), o = 1 - p;
	uint64_t rd = (uint64_t)c->engine->opts.resolution_delay_ms * MS;

	if (r->done[p] && r->ans[p].n > 0)
		return true;
	if (r->done[o] && r->ans[o].n > 0) {
		if (r->done[p] || now >= r->done_at[o] + rd)
			return true;
		*when = r->done_at[o] + rd;
	}
	return false;
}

/*
 * The race is over without a winner: report its failure once nothing of
 * it is left (every attempt closed and released, every query back), so a
 * race the retry policy starts again finds a clean slate.  Until then
 * verdict stands; each close and answer wakes c again.
 */
static enum iocx_race_verdict failed(struct iocx_race *r, struct iocx_conn *c,
				     enum iocx_race_verdict verdict,
				     int *status, uint32_t *os_code)
{
	if (!all_released(r) || queries_out(r)) {
		wait_until(c, 0);
		return verdict;
	}
	*status = r->fail_status;
	*os_code = r->fail_os;
	arm(c, 0);
	return RACE_FAILED;
}

/* See race.h. */
enum iocx_race_verdict iocx__race_step(struct iocx_conn *c, bool closing,
				       int *status, uint32_t *os_code)
{
	struct iocx_race *r = c->race;
	uint64_t now = c->engine->clock();
	uint64_t cad = (uint64_t)c->engine->opts.attempt_delay_ms * MS;
	uint64_t deadline = resolve_deadline(c), when = 0, due = 0;
	enum iocx_race_verdict verdict = RACE_WAIT;
	bool paced = false;

	take_mailbox(r, now);
	if (closing) {
		stop_all(r, c);
		if (!all_released(r) || queries_out(r))
			return RACE_WAIT;
		arm(c, 0);
		return RACE_CANCELLED;
	}

	/* The first attempt that connected wins. */
	for (unsigned k = 0; k < r->natt; k++) {
		struct attempt *a = &r->att[k];

		if (!a->seen || a->status != IOCX_OK || a->close_asked)
			continue;
		if (take_winner(c, a)) {
			stop_all(r, c);
			arm(c, 0);
			return RACE_WON;
		}
		r->fail_status = IOCX_E_CANCELLED;	/* destroy took it */
		r->fail_os = 0;
		r->retry_ok = false;
	}

	if (!r->racing && !r->resolve_expired) {
		bool all = r->done[0] && r->done[1];
		size_t n = r->ans[0].n + r->ans[1].n;

		if (all && n == 0) {
			/* A failed resolver may answer next time; a name
			 * that does not exist will not. */
			r->retry_ok = r->fail_status == IOCX_E_RESOLVE;
			return failed(r, c, verdict, status, os_code);
		}
		if (all && n == 1) {
			take_single(r, c);
			resolved(r, c, now);
			arm(c, 0);
			return RACE_DIRECT;
		}
		if (!all && !may_start(r, c, now, &when)) {
			if (!deadline || now < deadline) {
				wait_until(c, earliest(when, deadline));
				return RACE_WAIT;
			}
			/* deadline_ms passed while resolving: fail once
			 * the cancelled queries are back (a resolver may
			 * answer from inside cancel). */
			r->resolve_expired = true;
			cancel_queries(r, c);
			take_mailbox(r, now);
		} else {
			r->racing = true;
			resolved(r, c, now);
			verdict = RACE_RACING;
		}
	}
	if (r->resolve_expired) {
		r->fail_status = IOCX_E_RESOLVE;
		r->fail_os = 0;
		r->retry_ok = true;
		return failed(r, c, verdict, status, os_code);
	}

	/* Next attempt at once when none runs, else after the delay; each
	 * at its pacing turn. */
	while ((untried(r, 0) || untried(r, 1)) &&
	       (running(r) == 0 || now >= r->last_start + cad)) {
		if (!take_turn(r, c, now, &due)) {
			paced = true;
			break;
		}
		start_attempt(r, c, now);
	}
	if (queries_out(r) && deadline && now >= deadline)
		cancel_queries(r, c);	/* the attempts go on */
	if (!paced && running(r) == 0 && !queries_out(r))
		return failed(r, c, verdict, status, os_code);
	if (paced)
		when = due;	/* 0: the KICK of the waiter before */
	else if (running(r) && (untried(r, 0) || untried(r, 1)))
		when = r->last_start + cad;
	if (queries_out(r) && !(deadline && now >= deadline))
		when = earliest(when, deadline);
	wait_until(c, when);
	return verdict;
}

/* See race.h. */
bool iocx__race_retryable(const struct iocx_conn *c)
{
	return c->race->retry_ok;
}

/* See race.h. */
bool iocx__race_direct(const struct iocx_conn *c)
{
	return c->race->direct;
}

/* See race.h. */
void *iocx__race_user(const struct iocx_conn *attempt)
{
	const struct attempt *a = attempt->user;

	return a->race->parent->user;
}

/* See race.h. */
void **iocx__query_slot(iocx_query *q)
{
	return &q->slot;
}

/* See race.h. */
unsigned iocx__race_addresses_tried(const struct iocx_conn *c)
{
	return c->race ? c->race->addresses_tried : 1;
}

/* See race.h. */
uint64_t iocx__race_resolve_ns(const struct iocx_conn *c)
{
	return c->race ? c->race->resolve_ns : 0;
}

/* See race.h. */
void iocx__race_free(struct iocx_conn *c)
{
	struct iocx_race *r = c->race;

	if (!r)
		return;
	for (unsigned k = 0; k < r->natt; k++) {
		if (!r->att[k].released && r->att[k].conn)
			iocx__conn_unref(r->att[k].conn);
	}
	iocx__mutex_destroy(&r->lock);
	iocx__free(r);
	c->race = NULL;
}
