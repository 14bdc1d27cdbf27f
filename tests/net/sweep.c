/*
 * The portable half of the sweep helpers (sweep.h): the counters.
 */
#include <stdatomic.h>

#include "sweep.h"

#define SWEEP_MAX 32

size_t sweep_entries(void)
{
	return sweep__count;
}

const char *sweep_name(size_t entry)
{
	return entry < sweep__count ? sweep__table[entry].name : "?";
}

int sweep_err(size_t entry)
{
	return entry < sweep__count ? sweep__table[entry].err : 0;
}

static atomic_ulong calls[SWEEP_MAX];
static atomic_size_t armed_entry;
static atomic_ulong armed_nth;
static atomic_bool fired;

void sweep_arm(size_t entry, unsigned long nth)
{
	atomic_store(&armed_nth, 0);
	for (size_t i = 0; i < SWEEP_MAX; i++)
		atomic_store(&calls[i], 0);
	atomic_store(&fired, false);
	atomic_store(&armed_entry, entry);
	atomic_store(&armed_nth, nth);
}

unsigned long sweep_calls(size_t entry)
{
	return entry < SWEEP_MAX ? atomic_load(&calls[entry]) : 0;
}

bool sweep_fired(void)
{
	return atomic_load(&fired);
}

bool sweep__hit(size_t entry)
{
	unsigned long n;

	if (entry >= SWEEP_MAX)
		return false;
	n = atomic_fetch_add(&calls[entry], 1) + 1;
	if (n != atomic_load(&armed_nth) ||
	    atomic_load(&armed_entry) != entry)
		return false;
	atomic_store(&fired, true);
	return true;
}
