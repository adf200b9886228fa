// SPDX-License-Identifier: MIT
/*
 * fls.c - fiber-local storage: pthread keys, for fibers.
 *
 * A key is a slot of a process-wide table of RF_KEYS_MAX, and a fiber's
 * value for it is f->fls[slot].  The key a caller holds also carries the
 * slot's generation (key = generation * RF_KEYS_MAX + slot, generation >= 1),
 * so a deleted key, a key of an earlier generation, 0 or any other made-up
 * number is refused instead of reaching another key's values.
 *
 * A fiber keeps one pointer per slot and no generation, so a slot must not
 * be handed to a new key while some fiber still holds a value set through
 * the slot's previous key: the new key would see that value instead of
 * NULL, and its destructor would be run on it.  Each slot therefore counts
 * the fibers that hold a non-NULL value in it (@live below), and
 * rf_key_create() only takes slots that are free and whose count is zero.
 * A deleted key's slot becomes free again once the last fiber holding a
 * value for it has cleared the value or finished.
 *
 * The count changes only when a fiber's value goes from NULL to non-NULL
 * or back, so rf_getspecific() is two loads and the usual "set once, read
 * many times, destroyed at exit" costs two atomic additions per fiber.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include "internal.h"

/* The largest generation that still fits in an rf_key_t. */
#define RF__KEY_GEN_MAX (UINT_MAX / RF_KEYS_MAX)

/*
 * Like PTHREAD_DESTRUCTOR_ITERATIONS: destructors that set values again
 * are run again, this many rounds at most.
 */
#define RF__FLS_ROUNDS 4

/* rf__fls_destroy() keeps the slots it is working on in an unsigned int. */
_Static_assert(RF_KEYS_MAX <= 32, "a slot mask must hold every key");

struct rf__key_slot {
	unsigned int key;		/* atomic: the key in use, 0 when free */
	unsigned int gen;		/* the last generation handed out (lock) */
	void (*destructor)(void *);	/* (lock) */
};

static pthread_mutex_t rf__keys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rf__key_slot rf__keys[RF_KEYS_MAX];

/*
 * Fibers with a non-NULL value in each slot (atomic).  Fibers on every
 * worker change these: a cache line each, away from the table that
 * rf_getspecific() reads.
 */
static struct {
	unsigned long n;
} __attribute__((aligned(RF__CACHELINE))) rf__keys_live[RF_KEYS_MAX];

static inline unsigned int rf__key_slot_of(rf_key_t key)
{
	return key % RF_KEYS_MAX;
}

/* Is @key the key in use in its slot? */
static inline bool rf__key_valid(rf_key_t key)
{
	return key >= RF_KEYS_MAX && rf__load_relaxed(&rf__keys[rf__key_slot_of(key)].key) == key;
}

static inline struct rf_fiber *rf__fls_self(void)
{
	struct rf__worker *wk = rf__tls_wk;

	return wk ? wk->current : NULL;
}

RF_EXPORT int rf_key_create(rf_key_t *key, void (*destructor)(void *))
{
	unsigned int i;
	int ret = -EAGAIN;

	/* not preempted holding the lock (preempt.c): see rf__guard_enter() */
	RF__GUARD();
	if (!key)
		return -EINVAL;
	pthread_mutex_lock(&rf__keys_lock);
	for (i = 0; i < RF_KEYS_MAX; i++) {
		struct rf__key_slot *s = &rf__keys[i];

		/* seq_cst: pairs with the increment in rf_setspecific() */
		if (s->key || __atomic_load_n(&rf__keys_live[i].n, __ATOMIC_SEQ_CST))
			continue;
		s->gen = s->gen >= RF__KEY_GEN_MAX ? 1 : s->gen + 1;
		s->destructor = destructor;
		*key = s->gen * RF_KEYS_MAX + i;
		__atomic_store_n(&s->key, *key, __ATOMIC_SEQ_CST);
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&rf__keys_lock);
	return ret;
}

RF_EXPORT int rf_key_delete(rf_key_t key)
{
	int ret = -EINVAL;

	RF__GUARD();
	pthread_mutex_lock(&rf__keys_lock);
	if (rf__key_valid(key)) {
		struct rf__key_slot *s = &rf__keys[rf__key_slot_of(key)];

		/* seq_cst: pairs with the load in rf_setspecific() */
		__atomic_store_n(&s->key, 0, __ATOMIC_SEQ_CST);
		s->destructor = NULL;
		ret = 0;
	}
	pthread_mutex_unlock(&rf__keys_lock);
	return ret;
}

RF_EXPORT void *rf_getspecific(rf_key_t key)
{
	RF__GUARD();
	struct rf_fiber *cur = rf__fls_self();

	if (!cur || !rf__key_valid(key))
		return NULL;
	return cur->fls[rf__key_slot_of(key)];
}

RF_EXPORT int rf_setspecific(rf_key_t key, const void *value)
{
	RF__GUARD();
	struct rf_fiber *cur = rf__fls_self();
	unsigned int slot = rf__key_slot_of(key);
	unsigned long *live = &rf__keys_live[slot].n;
	void *old;

	if (!cur)
		return -EPERM;
	if (key < RF_KEYS_MAX)
		return -EINVAL;
	old = cur->fls[slot];
	if (!old && value) {
		/*
		 * Count the value before checking the key, so that a
		 * concurrent delete followed by a create either makes this
		 * check fail or sees the count and leaves the slot alone.
		 */
		__atomic_add_fetch(live, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&rf__keys[slot].key, __ATOMIC_SEQ_CST) != key) {
			__atomic_sub_fetch(live, 1, __ATOMIC_SEQ_CST);
			return -EINVAL;
		}
	} else {
		if (!rf__key_valid(key))
			return -EINVAL;
		if (old && !value)
			__atomic_sub_fetch(live, 1, __ATOMIC_SEQ_CST);
	}
	cur->fls[slot] = (void *)value;
	return 0;
}

/*
 * The destructor of each slot whose key is in use.  A slot in which @f
 * holds a value cannot have been given to another key since @f set it (the
 * value is counted), so a destructor found there is the right one for it.
 */
static void rf__fls_destructors(void (*dtor[RF_KEYS_MAX])(void *))
{
	unsigned int i;

	pthread_mutex_lock(&rf__keys_lock);
	for (i = 0; i < RF_KEYS_MAX; i++)
		dtor[i] = rf__keys[i].key ? rf__keys[i].destructor : NULL;
	pthread_mutex_unlock(&rf__keys_lock);
}

void rf__fls_destroy(struct rf_fiber *f)
{
	void (*dtor[RF_KEYS_MAX])(void *);
	unsigned int i, round, held;

	for (round = 0; round < RF__FLS_ROUNDS; round++) {
		/*
		 * The slots with a value when the round starts, and their
		 * destructors: a value a destructor sets in a slot that was
		 * empty is left to the next round, which looks its
		 * destructor up again (its key may be new).
		 */
		held = 0;
		for (i = 0; i < RF_KEYS_MAX; i++)
			if (f->fls[i])
				held |= 1u << i;
		if (!held)
			return;
		rf__fls_destructors(dtor);
		for (i = 0; i < RF_KEYS_MAX; i++) {
			void *v = f->fls[i];

			if (!(held & (1u << i)) || !v)
				continue;
			/*
			 * As with pthreads: the value is NULL while its
			 * destructor runs, and one the destructor sets
			 * again is destroyed in the next round.  The slot
			 * may be reused once uncounted, so the destructor
			 * was looked up before.
			 */
			f->fls[i] = NULL;
			__atomic_sub_fetch(&rf__keys_live[i].n, 1, __ATOMIC_SEQ_CST);
			if (dtor[i])
				dtor[i](v);
		}
	}
	/* Destructors that keep setting values: give up, as pthreads does. */
	for (i = 0; i < RF_KEYS_MAX; i++) {
		if (f->fls[i]) {
			f->fls[i] = NULL;
			__atomic_sub_fetch(&rf__keys_live[i].n, 1, __ATOMIC_SEQ_CST);
		}
	}
}
