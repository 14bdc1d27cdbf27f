/*
 * The engine's cache of resolver answers (see name_cache.h).
 *
 * A hash table of chains, keyed on the lower-cased host and the family,
 * and a list of every entry in the order they were put (oldest first),
 * for eviction.  nc->lock guards all of it; it is a leaf lock (nothing
 * else is taken under it, no allocation or free happens under it).
 */
#include <string.h>

#include "alloc.h"
#include "conn.h"		/* the platform's socket headers */
#include "name_cache.h"

/* One address as kept: only as large as its family needs. */
union cached_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct entry {
	struct entry *chain;		/* same bucket */
	struct entry *older, *newer;	/* put order */
	uint64_t expires;
	uint32_t hash;
	uint32_t os_code;		/* of a negative answer */
	int family;
	size_t n;			/* 0: a negative answer */
	char host[IOCX_MAX_HOST + 1];	/* lower case */
	union cached_addr addrs[];
};

struct iocx_name_cache {
	iocx_mutex lock;
	uint32_t max, count;
	uint32_t mask;			/* buckets - 1, a power of two */
	struct entry **buckets;
	struct entry *oldest, *newest;
};

/* Most buckets: more entries than this share chains (a few per chain). */
#define MAX_BUCKETS (1u << 16)

/* See name_cache.h. */
int iocx__name_cache_create(uint32_t max, struct iocx_name_cache **out)
{
	struct iocx_name_cache *nc;
	uint32_t nb = 1;

	while (nb < max && nb < MAX_BUCKETS)
		nb <<= 1;
	nc = iocx__alloc(sizeof(*nc));
	if (!nc)
		return IOCX_E_NOMEM;
	memset(nc, 0, sizeof(*nc));
	nc->buckets = iocx__alloc(nb * sizeof(nc->buckets[0]));
	if (!nc->buckets) {
		iocx__free(nc);
		return IOCX_E_NOMEM;
	}
	memset(nc->buckets, 0, nb * sizeof(nc->buckets[0]));
	nc->max = max;
	nc->mask = nb - 1;
	iocx__mutex_init(&nc->lock);
	*out = nc;
	return IOCX_OK;
}

/* See name_cache.h. */
void iocx__name_cache_destroy(struct iocx_name_cache *nc)
{
	struct entry *e, *next;

	if (!nc)
		return;
	for (e = nc->oldest; e; e = next) {
		next = e->newer;
		iocx__free(e);
	}
	iocx__mutex_destroy(&nc->lock);
	iocx__free(nc->buckets);
	iocx__free(nc);
}

/* host in lower case into key (host is at most IOCX_MAX_HOST bytes, as
 * iocx_connect checked); FNV-1a of it and the family. */
static uint32_t make_key(const char *host, int family,
			 char key[IOCX_MAX_HOST + 1])
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; host[i] && i < IOCX_MAX_HOST; i++) {
		char ch = host[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		key[i] = ch;
		h = (h ^ (unsigned char)ch) * 16777619u;
	}
	key[i] = '\0';
	return (h ^ (uint32_t)family) * 16777619u;
}

static struct entry **find(struct iocx_name_cache *nc, const char *key,
			   uint32_t hash, int family)
{
	struct entry **p = &nc->buckets[hash & nc->mask];

	for (; *p; p = &(*p)->chain) {
		if ((*p)->hash == hash && (*p)->family == family &&
		    strcmp((*p)->host, key) == 0)
			break;
	}
	return p;
}

/* Take e (found at *link) out of the table and the list; nc->lock held. */
static void unlink_entry(struct iocx_name_cache *nc, struct entry **link,
			 struct entry *e)
{
	*link = e->chain;
	if (e->older)
		e->older->newer = e->newer;
	else
		nc->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		nc->newest = e->older;
	nc->count--;
}

/* See name_cache.h. */
int iocx__name_cache_get(struct iocx_name_cache *nc, const char *host,
			 int family, uint64_t now, struct sockaddr_storage *out,
			 uint32_t *os_code)
{
	char key[IOCX_MAX_HOST + 1];
	uint32_t hash = make_key(host, family, key);
	struct entry **link, *e, *gone = NULL;
	int n = 0;

	iocx__mutex_lock(&nc->lock);
	link = find(nc, key, hash, family);
	e = *link;
	if (e && e->expires <= now) {
		unlink_entry(nc, link, e);
		gone = e;
	} else if (e && e->n == 0) {
		n = IOCX__NAME_CACHE_NEGATIVE;
		if (os_code)
			*os_code = e->os_code;
	} else if (e) {
		for (size_t i = 0; i < e->n; i++) {
			memset(&out[i], 0, sizeof(out[i]));
			memcpy(&out[i], &e->addrs[i], sizeof(e->addrs[i]));
		}
		n = (int)e->n;
	}
	iocx__mutex_unlock(&nc->lock);
	iocx__free(gone);
	return n;
}

/*
 * Put e (made by the caller, key and hash set) into the table, replacing
 * the entry kept for its key or, when full, evicting the oldest.
 */
static void insert(struct iocx_name_cache *nc, struct entry *e)
{
	struct entry **link, *old, *evicted = NULL;

	iocx__mutex_lock(&nc->lock);
	link = find(nc, e->host, e->hash, e->family);
	old = *link;
	if (old) {
		unlink_entry(nc, link, old);
	} else if (nc->count == nc->max) {
		evicted = nc->oldest;
		unlink_entry(nc, find(nc, evicted->host, evicted->hash,
				      evicted->family), evicted);
	}
	link = &nc->buckets[e->hash & nc->mask];
	e->chain = *link;
	*link = e;
	e->older = nc->newest;
	if (nc->newest)
		nc->newest->newer = e;
	else
		nc->oldest = e;
	nc->newest = e;
	nc->count++;
	iocx__mutex_unlock(&nc->lock);
	iocx__free(old);
	iocx__free(evicted);
}

/* See name_cache.h. */
void iocx__name_cache_put(struct iocx_name_cache *nc, const char *host,
			  int family, const struct sockaddr_storage *addrs,
			  size_t n, uint64_t expires)
{
	struct entry *e;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += addrs[i].ss_family == family;
	if (k > IOCX_MAX_ADDRESSES)
		k = IOCX_MAX_ADDRESSES;
	if (k == 0)
		return;
	e = iocx__alloc(sizeof(*e) + k * sizeof(e->addrs[0]));
	if (!e)
		return;
	memset(e, 0, sizeof(*e) + k * sizeof(e->addrs[0]));
	e->hash = make_key(host, family, e->host);
	e->family = family;
	e->expires = expires;
	for (size_t i = 0; i < n && e->n < k; i++) {
		if (addrs[i].ss_family != family)
			continue;
		memcpy(&e->addrs[e->n++], &addrs[i],
		       family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in));
	}
	insert(nc, e);
}

/* See name_cache.h. */
void iocx__name_cache_put_negative(struct iocx_name_cache *nc,
				   const char *host, int family,
				   uint32_t os_code, uint64_t expires)
{
	struct entry *e = iocx__alloc(sizeof(*e));

	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->hash = make_key(host, family, e->host);
	e->family = family;
	e->expires = expires;
	e->os_code = os_code;
	insert(nc, e);
}
