/*
 * The Windows engine's own resolver (struct iocx_resolver): one
 * asynchronous GetAddrInfoExW per query (Windows 8 and later), with an
 * OVERLAPPED and a completion routine.  The routine runs on a thread of
 * the OS's pool; it only posts the record into the engine's completion
 * port, and the worker that dequeues it calls iocx_query_done().  No
 * thread per query, no wait on an event.
 *
 * Cancel answers the query at once (IOCX_E_CANCELLED) and, when the OS
 * gave a handle for the lookup, asks GetAddrInfoExCancel to stop it.  It
 * finds its record in O(1): the record's address sits in the engine's
 * query (iocx__query_slot) from start until the query is answered, when
 * it is cleared under g->lock; a cancel that finds it NULL has nothing to
 * do.
 * Wine 8 gives none (the handle stays NULL): the lookup then runs to its
 * end and its answer is dropped.  Either way the OS still calls the
 * routine once, later, with the record.
 *
 * Lifetime.  A record (struct gai_query) is counted by refs: one for the
 * OS until the routine ran, then for the port while the record sits there
 * (the routine hands the OS's over), one for start until it returns (the
 * routine may run before GetAddrInfoExW does), one while a canceller
 * calls GetAddrInfoExCancel.  Every record also keeps the shared block
 * (struct iocx_gai) alive: the routine of a cancelled lookup may run
 * after the engine is destroyed, and then finds the port gone (NULL) and
 * only frees.  Records and the block come from the process heap, not the
 * library allocator, because they may outlive the engine (and with it
 * the allocator's pin).
 *
 * Unloading and Winsock.  The OS calls the routine, code of this module,
 * on its own thread, perhaps after destroy: the module must stay loaded
 * until then, and Winsock started, since its last WSACleanup cancels
 * pending asynchronous calls without notification (the record would
 * leak).  Neither may be let go from inside the routine: FreeLibrary
 * there would unmap the code that runs, and FreeLibraryAndExitThread ends
 * the thread, which belongs to the OS's pool; FreeLibraryWhenCallbackReturns
 * needs a thread-pool callback instance, which this routine does not get.
 * So the block holds a module reference (GetModuleHandleExW) from create;
 * at release, when no lookup is left, the engine's thread frees it; when
 * some are left, the block keeps it for good (the module stays loaded
 * until the process ends) and takes over the engine's Winsock reference,
 * which the last record leaves owed, and the next create or release,
 * on an application thread, pays with WSACleanup (docs/windows.md).
 *
 * Locking: g->lock (an SRW lock, a leaf) guards g->port, the counts,
 * every record's fields but the OVERLAPPED, and the query slots of
 * records not yet answered.  Nothing is called with it held except
 * PostQueuedCompletionStatus.
 */
#include "win/resolve_gai.h"

#include <string.h>

#include "engine.h"
#include "race.h"
#include "win/error.h"
#include "win/sys.h"

struct gai_query {
	OVERLAPPED ov;			/* the OS's, then the port's */
	struct iocx_gai *g;
	iocx_query *q;
	int family;
	unsigned refs;
	bool answered;			/* iocx_query_done given (or giving) */
	bool os_done;			/* the routine ran */
	HANDLE handle;			/* GetAddrInfoExCancel's, or NULL */
	int err;			/* the lookup's code */
	ADDRINFOEXW *res;		/* its answer, freed with the record */
	WCHAR host[IOCX_MAX_HOST + 1];
};

struct iocx_gai {
	struct iocx_resolver ops;	/* first: ops.ctx is us */
	SRWLOCK lock;
	HANDLE port;			/* NULL once detached */
	ULONG_PTR key;
	bool released;			/* the engine let go */
	bool owes_wsa;			/* took over the engine's WSAStartup */
	unsigned records;		/* records alive that point here */
	HMODULE module;			/* our reference on this module */
};

/* Process-wide counts for tests (iocx__gai_counts). */
static volatile LONG records_alive;
static volatile LONG os_cancels;
static volatile LONG late_dropped;
/* WSACleanup calls owed by blocks whose last record is gone. */
static volatile LONG owed_cleanups;
/* An address in this module, to name it to GetModuleHandleExW. */
static const char module_anchor;

static void *heap_alloc(size_t size)
{
	return HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, size);
}

static void heap_free(void *p)
{
	HeapFree(GetProcessHeap(), 0, p);
}

/* q is being answered: a cancel must no longer find it; g->lock held. */
static void forget(struct gai_query *q)
{
	*iocx__query_slot(q->q) = NULL;
}

/* Drop one reference on q; the last frees it, and g after its last. */
static void put(struct gai_query *q)
{
	struct iocx_gai *g = q->g;
	bool free_q, free_g = false, owes = false;

	AcquireSRWLockExclusive(&g->lock);
	free_q = --q->refs == 0;
	if (free_q)
		free_g = --g->records == 0 && g->released;
	ReleaseSRWLockExclusive(&g->lock);
	if (!free_q)
		return;
	if (q->res)
		FreeAddrInfoExW(q->res);
	heap_free(q);
	InterlockedDecrement(&records_alive);
	if (free_g) {
		/* Released with lookups left: g's module reference stays
		 * (see the top); its Winsock one is paid later. */
		owes = g->owes_wsa;
		heap_free(g);
	}
	if (owes)
		InterlockedIncrement(&owed_cleanups);
}

/* Pay the WSACleanup calls owed; on an application thread, whose engine
 * holds a Winsock reference of its own. */
static void pay_owed_cleanups(void)
{
	while (InterlockedCompareExchange(&owed_cleanups, 0, 0) > 0) {
		if (InterlockedDecrement(&owed_cleanups) < 0) {
			InterlockedIncrement(&owed_cleanups);
			break;
		}
		WSACleanup();
	}
}

/* Give q's answer to the engine (once: the caller set q->answered). */
static void answer(struct gai_query *q)
{
	struct sockaddr_storage addrs[IOCX_MAX_ADDRESSES];
	size_t n = 0;

	for (ADDRINFOEXW *a = q->err == 0 ? q->res : NULL;
	     a && n < IOCX_MAX_ADDRESSES;
	     a = (ADDRINFOEXW *)(void *)a->ai_next) {
		/* ai_next's struct tag differs from ADDRINFOEXW's in the
		 * mingw-w64 header: hence the cast. */
		if (a->ai_family != q->family || !a->ai_addr ||
		    a->ai_addrlen > sizeof(addrs[0]))
			continue;
		memset(&addrs[n], 0, sizeof(addrs[n]));
		memcpy(&addrs[n], a->ai_addr, a->ai_addrlen);
		n++;
	}
	iocx_query_done(q->q, iocx__win_error_from_gai(q->err),
			(uint32_t)q->err, addrs, n);
}

/*
 * The lookup is over (err is its code): post q to the engine's port, or,
 * when it was cancelled meanwhile or the engine is gone, drop it.  The
 * OS's reference moves to the port, or is dropped here.
 */
static void os_finished(struct gai_query *q, int err)
{
	struct iocx_gai *g = q->g;
	bool late, give = false;

	AcquireSRWLockExclusive(&g->lock);
	q->os_done = true;
	q->err = err;
	late = q->answered;
	if (!late) {
		/* Not answered means the engine still waits for it, so it
		 * has not detached the port. */
		if (g->port && iocx__win_sys.post_queued_completion_status(
				       g->port, 0, g->key, &q->ov)) {
			ReleaseSRWLockExclusive(&g->lock);
			return;
		}
		/* The port refused the packet: answer from here. */
		q->answered = true;
		forget(q);
		give = true;
	}
	ReleaseSRWLockExclusive(&g->lock);
	if (late)
		InterlockedIncrement(&late_dropped);
	if (give)
		answer(q);
	put(q);
}

/* The OS's completion routine, on one of its pool threads. */
static void CALLBACK gai_routine(DWORD err, DWORD bytes, LPOVERLAPPED ov)
{
	(void)bytes;
	os_finished(container_of(ov, struct gai_query, ov), (int)err);
}

static int gai_start(void *ctx, const char *host, int family,
		     iocx_query *iq)
{
	struct iocx_gai *g = ctx;
	ADDRINFOEXW hints;
	struct gai_query *q;
	HANDLE handle = NULL;
	size_t len = strlen(host);
	int rc;
	/* mingw-w64 declares LPLOOKUPSERVICE_COMPLETION_ROUTINE as PVOID,
	 * and ISO C has no cast from a function pointer to void *. */
	union {
		void (CALLBACK *fn)(DWORD, DWORD, LPOVERLAPPED);
		LPLOOKUPSERVICE_COMPLETION_ROUTINE p;
	} routine = { .fn = gai_routine };

	if (len > IOCX_MAX_HOST)
		return IOCX_E_INVAL;
	q = heap_alloc(sizeof(*q));
	if (!q)
		return IOCX_E_NOMEM;
	InterlockedIncrement(&records_alive);
	/* The engine checked the name: letters, digits, '-', '_', '.'. */
	for (size_t i = 0; i <= len; i++)
		q->host[i] = (WCHAR)(unsigned char)host[i];
	q->g = g;
	q->q = iq;
	q->family = family;
	q->refs = 2;			/* the OS's, and ours until we return */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;

	AcquireSRWLockExclusive(&g->lock);
	g->records++;
	*iocx__query_slot(iq) = q;
	ReleaseSRWLockExclusive(&g->lock);

	/* The routine may run (and post q) before this returns. */
	rc = iocx__win_sys.get_addr_info_ex(
		q->host, NULL, NS_ALL, NULL, &hints, &q->res, NULL, &q->ov,
		routine.p, &handle);
	if (rc == WSA_IO_PENDING) {
		AcquireSRWLockExclusive(&g->lock);
		if (!q->os_done)
			q->handle = handle;
		ReleaseSRWLockExclusive(&g->lock);
		put(q);
		return IOCX_OK;
	}
	/*
	 * Finished at once (an error, or, should an OS do it, an answer):
	 * the routine will not run.  The answer still goes through the
	 * port, never from inside start.
	 */
	AcquireSRWLockExclusive(&g->lock);
	q->os_done = true;
	q->err = rc;
	if (iocx__win_sys.post_queued_completion_status(g->port, 0, g->key,
							&q->ov)) {
		ReleaseSRWLockExclusive(&g->lock);
		put(q);
		return IOCX_OK;
	}
	q->answered = true;	/* no answer will come: start fails */
	forget(q);
	ReleaseSRWLockExclusive(&g->lock);
	put(q);
	put(q);
	return IOCX_E_SYSTEM;
}

static void gai_cancel(void *ctx, iocx_query *iq)
{
	struct iocx_gai *g = ctx;
	struct gai_query *q;
	HANDLE handle = NULL;

	AcquireSRWLockExclusive(&g->lock);
	q = *iocx__query_slot(iq);
	if (!q) {		/* answered already, or being answered */
		ReleaseSRWLockExclusive(&g->lock);
		return;
	}
	q->answered = true;
	forget(q);
	if (q->handle && !q->os_done) {
		handle = q->handle;
		q->refs++;	/* the canceller's, for the call below */
	}
	ReleaseSRWLockExclusive(&g->lock);

	iocx_query_done(iq, IOCX_E_CANCELLED, 0, NULL, 0);
	if (!handle)
		return;
	/* The OS runs the routine (WSA_E_CANCELLED) at once, possibly from
	 * inside this call; a lookup that just ended gives
	 * WSA_INVALID_HANDLE instead. */
	if (iocx__win_sys.get_addr_info_ex_cancel(&handle) == 0)
		InterlockedIncrement(&os_cancels);
	put(q);
}

/* See win/resolve_gai.h. */
struct iocx_gai *iocx__gai_create(HANDLE port, ULONG_PTR key)
{
	struct iocx_gai *g = heap_alloc(sizeof(*g));

	pay_owed_cleanups();
	if (!g)
		return NULL;
	if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
				(LPCWSTR)(const void *)&module_anchor,
				&g->module)) {
		heap_free(g);
		return NULL;
	}
	g->ops.ctx = g;
	g->ops.start = gai_start;
	g->ops.cancel = gai_cancel;
	InitializeSRWLock(&g->lock);
	g->port = port;
	g->key = key;
	return g;
}

/* See win/resolve_gai.h. */
const struct iocx_resolver *iocx__gai_ops(struct iocx_gai *g)
{
	return &g->ops;
}

/* See win/resolve_gai.h. */
void iocx__gai_complete(OVERLAPPED *ov)
{
	struct gai_query *q = container_of(ov, struct gai_query, ov);
	struct iocx_gai *g = q->g;
	bool give;

	AcquireSRWLockExclusive(&g->lock);
	give = !q->answered;
	if (give) {
		q->answered = true;
		forget(q);
	}
	ReleaseSRWLockExclusive(&g->lock);
	if (give)
		answer(q);
	else
		InterlockedIncrement(&late_dropped);
	put(q);
}

/* See win/resolve_gai.h. */
void iocx__gai_detach(struct iocx_gai *g)
{
	AcquireSRWLockExclusive(&g->lock);
	g->port = NULL;
	ReleaseSRWLockExclusive(&g->lock);
}

/* See win/resolve_gai.h. */
void iocx__gai_drop(OVERLAPPED *ov)
{
	put(container_of(ov, struct gai_query, ov));
}

/* See win/resolve_gai.h. */
bool iocx__gai_release(struct iocx_gai *g)
{
	HMODULE module;
	bool free_g;

	if (!g)
		return false;
	AcquireSRWLockExclusive(&g->lock);
	g->port = NULL;
	g->released = true;
	free_g = g->records == 0;
	g->owes_wsa = !free_g;
	module = g->module;
	ReleaseSRWLockExclusive(&g->lock);
	pay_owed_cleanups();
	if (!free_g)
		return true;
	heap_free(g);
	/* The caller's own reference keeps the module loaded past this. */
	FreeLibrary(module);
	return false;
}

/* See win/resolve_gai.h. */
void iocx__gai_counts(struct iocx_gai_counts *out)
{
	out->records = InterlockedCompareExchange(&records_alive, 0, 0);
	out->os_cancels = InterlockedCompareExchange(&os_cancels, 0, 0);
	out->late_dropped = InterlockedCompareExchange(&late_dropped, 0, 0);
	out->owed_cleanups = InterlockedCompareExchange(&owed_cleanups, 0, 0);
}
