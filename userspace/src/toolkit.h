/* SPDX-License-Identifier: MIT */
/*
 * toolkit.h - what the toolkit's files (sync.c, chan.c, group.c) share.
 *
 * Kept out of internal.h while the core is rewritten; rf__wq_park_nocancel()
 * belongs next to rf__wq_park() in wq.c.
 */
#ifndef RF_TOOLKIT_H
#define RF_TOOLKIT_H

#include "internal.h"

/*
 * rf__wq_park_nocancel() - rf__wq_park() with no deadline that rf_cancel()
 * leaves alone (the wait's @nocancel), for the waits that must end in a
 * known state even in a cancelled fiber: rf_cond_wait() getting its mutex
 * back, rf_group_wait() waiting for its fibers.  Called with @q locked;
 * returns with it unlocked.
 *
 * Neither rf_cancel() nor the deadline of the fiber's group ends the wait.
 *
 * Return: what the waker delivered, or a negative errno if the core could
 * not park the fiber (-EPERM outside a fiber).  Callers fall back to
 * rf_yield() polling then.
 */
int rf__wq_park_nocancel(struct rf_waitq *q, struct rf__waiter *wt);

#endif /* RF_TOOLKIT_H */
