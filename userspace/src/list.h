/* SPDX-License-Identifier: MIT */
/*
 * list.h - the intrusive doubly linked list every list of the library is:
 * as in the kernel's <linux/list.h>, the links (struct rf__list_node) live
 * in the listed object, rf__list_entry() finds the object from them, and
 * adding or removing an entry is O(1) and allocates nothing.
 *
 * Unlike the kernel's, a list is not circular: struct rf__list is its two
 * ends, both NULL when it is empty, and the first entry's prev and the last
 * one's next are NULL.  So an all-zero list is an empty one (a calloc'ed
 * worker, RF_MUTEX_INIT and the other static initialisers of ringfiber.h,
 * whose struct rf_waitq holds a list) and an empty list may be copied.  An
 * entry that is on no list has NULL links.  The two types are declared in
 * ringfiber.h, for struct rf_waitq's sake.
 *
 * No locking: each list's owner says what guards it.
 */
#ifndef RF_LIST_H
#define RF_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "ringfiber.h"

#define rf__list_entry(node, type, member) \
	((type *)(void *)((char *)(node) - __builtin_offsetof(type, member)))

/* The entry of @node, NULL for a NULL @node (the end of a list). */
#define rf__list_entry_or_null(node, type, member) ({				\
	struct rf__list_node *rf__n = (node);					\
	rf__n ? rf__list_entry(rf__n, type, member) : (type *)NULL;		\
})

#define rf__list_first_entry(list, type, member) \
	rf__list_entry_or_null((list)->first, type, member)

#define rf__list_next_entry(pos, member) \
	rf__list_entry_or_null((pos)->member.next, __typeof__(*(pos)), member)

/* Every entry, first to last; @pos must stay on the list until the next step. */
#define rf__list_for_each_entry(pos, list, member)				\
	for ((pos) = rf__list_first_entry(list, __typeof__(*(pos)), member); (pos); \
	     (pos) = rf__list_next_entry(pos, member))

/* The same, where the body may take @pos off the list (or free it): @tmp is the next. */
#define rf__list_for_each_entry_safe(pos, tmp, list, member)			\
	for ((pos) = rf__list_first_entry(list, __typeof__(*(pos)), member);	\
	     (pos) && ((tmp) = rf__list_next_entry(pos, member), true);		\
	     (pos) = (tmp))

static inline bool rf__list_empty(const struct rf__list *list)
{
	return !list->first;
}

/* Link @node in between @prev and @next, neighbours on @list (NULL: its end). */
static inline void rf__list_insert(struct rf__list *list, struct rf__list_node *node,
				   struct rf__list_node *prev, struct rf__list_node *next)
{
	node->prev = prev;
	node->next = next;
	if (prev)
		prev->next = node;
	else
		list->first = node;
	if (next)
		next->prev = node;
	else
		list->last = node;
}

static inline void rf__list_add_head(struct rf__list *list, struct rf__list_node *node)
{
	rf__list_insert(list, node, NULL, list->first);
}

static inline void rf__list_add_tail(struct rf__list *list, struct rf__list_node *node)
{
	rf__list_insert(list, node, list->last, NULL);
}

/* Take @node off @list, the list it is on; its links become NULL. */
static inline void rf__list_del(struct rf__list *list, struct rf__list_node *node)
{
	if (node->prev)
		node->prev->next = node->next;
	else
		list->first = node->next;
	if (node->next)
		node->next->prev = node->prev;
	else
		list->last = node->prev;
	node->next = node->prev = NULL;
}

#endif /* RF_LIST_H */
