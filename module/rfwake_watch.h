/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Block notification: a watched thread that blocks in the kernel wakes a
 * waiter of its domain (rfwake_watch.c, Documentation/rfwake.md).
 */
#ifndef _RFWAKE_WATCH_H
#define _RFWAKE_WATCH_H

#include <linux/bitmap.h>
#include <linux/device.h>
#include <linux/mm_types.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/rfwake.h>

#include "rfwake_core.h"

struct rfwake_watch_set;

/**
 * typedef rfwake_watch_free_t - frees the domain of a set.
 * @set: the set, whose last reference was dropped.
 *
 * Called in process context, by .release or, after it, by the end of the
 * set's last watch (an ioctl or rfwake_watch.c's workqueue).
 */
typedef void (*rfwake_watch_free_t)(struct rfwake_watch_set *set);

/**
 * struct rfwake_watch_set - the watches of one domain, and its watch pages.
 * @dom: the domain whose waiters are notified.
 * @pages: the watch pages: armed[] then seq[] (struct rfwake_watch_shared).
 * @armed: page_address(@pages[0]): written by user space.
 * @seq: page_address(@pages[1]): written by the kernel.
 * @used: watch ids that watch a thread now (atomic bit operations: the
 *        last switch of an exiting thread clears its bit).
 * @refs: one for the open file, one per watch: the domain stays allocated
 *        while a watch may still fire, after the file is closed.
 * @closed: the file was released: the watches notify nobody.
 * @free: frees the domain (and this set with it) when @refs drops to 0.
 */
struct rfwake_watch_set {
	struct rfwake_domain *dom;
	struct page *pages[2];
	u32 *armed;
	u32 *seq;
	unsigned long used[BITS_TO_LONGS(RFWAKE_MAX_WAITERS)];
	refcount_t refs;
	bool closed;
	rfwake_watch_free_t free;
};

int rfwake_watch_set_init(struct rfwake_watch_set *set,
			  struct rfwake_domain *dom, rfwake_watch_free_t free);
void rfwake_watch_set_destroy(struct rfwake_watch_set *set);
bool rfwake_watch_set_close(struct rfwake_watch_set *set);
int rfwake_watch_mmap(struct rfwake_watch_set *set,
		      struct vm_area_struct *vma);

bool rfwake_watch_supported(void);
int rfwake_watch(struct rfwake_watch_set *set, const struct rfwake_watch *arg);
int rfwake_unwatch(void);

extern struct device_attribute rfwake_dev_attr_blocks;

int rfwake_watch_init(void);
void rfwake_watch_exit(void);

#endif /* _RFWAKE_WATCH_H */
