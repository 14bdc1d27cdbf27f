/*
 * Fault sweep helpers for test_sweep.c (SQLite's "fail call N" approach):
 * counting wrappers on every entry of the backend's syscall table
 * (iocx__linux_sys, iocx__win_sys) that fail exactly the nth call of one
 * entry with a fixed, realistic error.  One half per OS: sweep_linux.c,
 * sweep_win.c.  Install before creating an engine (the table must not
 * change under a running one).
 */
#ifndef IOCX_TESTS_NET_SWEEP_H
#define IOCX_TESTS_NET_SWEEP_H

#include <stdbool.h>
#include <stddef.h>

/* Entries of this OS's table the sweep can fail. */
size_t sweep_entries(void);
const char *sweep_name(size_t entry);

/*
 * Whether entry can be failed here (io_uring preps need
 * IORING_NOP_INJECT_RESULT; entries of the other Linux backend are never
 * called, which the sweep sees as zero calls).
 */
bool sweep_usable(size_t entry);

/* The iocx code the injected error maps to, for the failure messages. */
int sweep_mapped(size_t entry);

/* The raw error injected (errno, WSA or Win32 code). */
int sweep_err(size_t entry);

void sweep_install(void);
void sweep_uninstall(void);

/*
 * Zero the call counts and fail the nth call (1 = the next) of entry from
 * now on; nth 0 fails nothing (a counting run).
 */
void sweep_arm(size_t entry, unsigned long nth);

/* Calls of entry since sweep_arm; whether the armed failure happened. */
unsigned long sweep_calls(size_t entry);
bool sweep_fired(void);

/* For the wrappers: count a call of entry; true when it must fail. */
bool sweep__hit(size_t entry);

/* Each OS half: its entries, in the order of its enum. */
struct sweep_entry {
	const char *name;
	int err;		/* the error a failed call gives */
	bool prep;		/* io_uring prep: needs result injection */
};
extern const struct sweep_entry sweep__table[];
extern const size_t sweep__count;

#endif /* IOCX_TESTS_NET_SWEEP_H */
