/* SPDX-License-Identifier: MIT */
/*
 * fls.c - fiber-local storage: keys, each fiber's own values across yields,
 * sleeps and workers, destructors (exactly once per non-NULL value, in the
 * fiber, before it is joined; detached, exiting, cancelled and main fibers
 * too; values set again by a destructor), deleted keys, key exhaustion, and
 * every bad key.
 *
 * Runs with two workers, and with one and no ring (fiber-local storage
 * needs no io_uring; the sleeps are then skipped).
 */
#include <limits.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define NFIB 200
#define NDET 50

static const struct rt_config configs[] = {
	{ "2 workers", 0 },
	{ "1 worker, no ring", RF_RT_NO_RING },
};

static unsigned int nworkers_of(unsigned int flags)
{
	return (flags & RF_RT_NO_RING) ? 1 : 2;
}

/* A short sleep; without a ring rf_sleep() says -ENOSYS and we yield. */
static void nap(void)
{
	if (rf_sleep(rf_deadline_after(MSEC)) == -ENOSYS)
		rf_yield();
}

/* ---------------------------------------------------------- basic use */

static void test_basic(void)
{
	rf_key_t k1, k2, stale;
	int a, b, c;

	is_int(rf_key_create(&k1, NULL), 0, tn("rf_key_create() -> 0"));
	is_int(rf_key_create(&k2, NULL), 0, tn("a second rf_key_create() -> 0"));
	ok(k1 != k2, "%s", tn("the keys differ"));
	ok(rf_getspecific(k1) == NULL && rf_getspecific(k2) == NULL, "%s",
	   tn("a new key's value is NULL"));
	is_int(rf_setspecific(k1, &a), 0, tn("rf_setspecific(k1) -> 0"));
	is_int(rf_setspecific(k2, &b), 0, tn("rf_setspecific(k2) -> 0"));
	ok(rf_getspecific(k1) == &a, "%s", tn("rf_getspecific(k1) gives k1's value"));
	ok(rf_getspecific(k2) == &b, "%s", tn("rf_getspecific(k2) gives k2's value"));
	is_int(rf_setspecific(k1, &c), 0, tn("replace k1's value"));
	ok(rf_getspecific(k1) == &c && rf_getspecific(k2) == &b, "%s",
	   tn("k1 has the new value, k2 is untouched"));
	is_int(rf_setspecific(k1, NULL), 0, tn("rf_setspecific(k1, NULL) -> 0"));
	ok(rf_getspecific(k1) == NULL, "%s", tn("k1's value is NULL again"));

	/* Keys that are not (or no longer) keys. */
	is_int(rf_key_create(&stale, NULL), 0, tn("create a third key"));
	is_int(rf_key_delete(stale), 0, tn("and delete it"));
	is_int(rf_setspecific(0, &a), -EINVAL, tn("rf_setspecific(0) -> -EINVAL"));
	is_int(rf_setspecific(UINT_MAX, &a), -EINVAL, tn("rf_setspecific(UINT_MAX) -> -EINVAL"));
	is_int(rf_setspecific(stale, &a), -EINVAL, tn("rf_setspecific(deleted key) -> -EINVAL"));
	ok(rf_getspecific(0) == NULL && rf_getspecific(UINT_MAX) == NULL &&
		   rf_getspecific(stale) == NULL, "%s",
	   tn("rf_getspecific() of bad keys -> NULL"));
	ok(rf_getspecific(k2) == &b, "%s", tn("bad keys changed nothing"));

	is_int(rf_setspecific(k2, NULL), 0, tn("clear k2"));
	is_int(rf_key_delete(k1), 0, tn("rf_key_delete(k1) -> 0"));
	is_int(rf_key_delete(k2), 0, tn("rf_key_delete(k2) -> 0"));
	is_int(rf_key_delete(k1), -EINVAL, tn("rf_key_delete(k1) again -> -EINVAL"));
}

/* ------------------------------------------------------------ isolation */

static rf_key_t iso_key, iso_key2;

struct iso {
	int id;
	int initial_null;	/* both keys read NULL before the fiber set them */
	int mismatches;		/* reads that gave another value than our own */
	int workers_seen;	/* bit per worker the fiber ran on */
	int rc;
};

static void *iso_fiber(void *arg)
{
	struct iso *s = arg;
	void *mine2 = (void *)(intptr_t)(s->id + 1);
	int i;

	s->initial_null = rf_getspecific(iso_key) == NULL && rf_getspecific(iso_key2) == NULL;
	s->rc = rf_setspecific(iso_key, s);
	s->rc |= rf_setspecific(iso_key2, mine2);
	for (i = 0; i < 60; i++) {
		int w = rf_worker_id();

		if (w >= 0 && w < 31)
			s->workers_seen |= 1 << w;
		if (i % 10 == 9)
			nap();
		else
			rf_yield();
		if (rf_getspecific(iso_key) != s || rf_getspecific(iso_key2) != mine2)
			s->mismatches++;
	}
	return NULL;
}

static void test_isolation(void)
{
	static struct iso s[NFIB];
	struct rf_fiber *f[NFIB];
	int i, rc = 0, spawned = 0, not_null = 0, bad = 0, set_failed = 0, moved = 0;
	int workers = rf_worker_count();
	int main_val;

	is_int(rf_key_create(&iso_key, NULL), 0, tn("create a key for isolation"));
	is_int(rf_key_create(&iso_key2, NULL), 0, tn("and a second one"));
	is_int(rf_setspecific(iso_key, &main_val), 0, tn("the main fiber sets its own value"));
	memset(s, 0, sizeof(s));
	for (i = 0; i < NFIB; i++) {
		s[i].id = i;
		rc = rf_spawn_on((unsigned int)(i % workers), &f[i], iso_fiber, &s[i], NULL);
		if (rc)
			break;
		spawned++;
	}
	is_int(rc, 0, tn("spawn %d fibers over %d workers", NFIB, workers));
	for (i = 0; i < spawned; i++) {
		rf_join(f[i], NULL, ND);
		not_null += !s[i].initial_null;
		bad += s[i].mismatches;
		set_failed += s[i].rc != 0;
		moved += (s[i].workers_seen & (s[i].workers_seen - 1)) != 0;
	}
	is_int(not_null, 0, tn("every fiber starts with NULL values"));
	is_int(set_failed, 0, tn("every fiber's rf_setspecific() -> 0"));
	is_int(bad, 0, tn("every fiber sees its own values after yields and sleeps"));
	tap_diag("  %d of %d fibers ran on more than one worker", moved, spawned);
	ok(rf_getspecific(iso_key) == &main_val && rf_getspecific(iso_key2) == NULL, "%s",
	   tn("the main fiber's values are its own"));
	rf_setspecific(iso_key, NULL);
	is_int(rf_key_delete(iso_key), 0, tn("delete the isolation keys"));
	is_int(rf_key_delete(iso_key2), 0, tn("delete the second one"));
}

/* ----------------------------------------------------------- destructors */

static rf_key_t dkey;		/* destructor: count_dtor */
static rf_key_t rkey;		/* destructor: set the value again, once */
static rf_key_t akey;		/* destructor: always set the value again */

/* Per value: destructor calls and what the destructor saw. */
struct dval {
	int calls;
	int saw_null;		/* rf_getspecific(dkey) was NULL inside */
	struct rf_fiber *self;	/* rf_self() inside */
};

static struct dval joinable[NFIB], replaced[NFIB], detached[NDET];
static struct dval main_val, exit_val, cancel_val;
static int reset_calls, always_calls;

static void count_dtor(void *v)
{
	struct dval *d = v;

	__atomic_add_fetch(&d->calls, 1, __ATOMIC_RELAXED);
	d->saw_null = rf_getspecific(dkey) == NULL;
	d->self = rf_self();
}

static void reset_once_dtor(void *v)
{
	if (__atomic_add_fetch(&reset_calls, 1, __ATOMIC_RELAXED) == 1)
		rf_setspecific(rkey, v);
}

static void always_reset_dtor(void *v)
{
	__atomic_add_fetch(&always_calls, 1, __ATOMIC_RELAXED);
	rf_setspecific(akey, v);
}

/*
 * Joinable fiber @i: sets &joinable[i]; every third one first sets
 * &replaced[i] and replaces it (never destroyed); every third one clears
 * its value (nothing destroyed).
 */
static void *dtor_fiber(void *arg)
{
	int i = (int)(intptr_t)arg;

	if (i % 3 == 0)
		rf_setspecific(dkey, &replaced[i]);
	rf_setspecific(dkey, &joinable[i]);
	rf_yield();
	if (i % 3 == 1)
		rf_setspecific(dkey, NULL);
	return NULL;
}

static void *detached_fiber(void *arg)
{
	rf_setspecific(dkey, arg);
	nap();
	return NULL;
}

static void *exit_fiber(void *arg)
{
	rf_setspecific(dkey, &exit_val);
	rf_exit(NULL);
	return (void *)1;
}

static void *cancelled_fiber(void *arg)
{
	struct rf_event never = RF_EVENT_INIT;

	rf_setspecific(dkey, &cancel_val);
	return (void *)(intptr_t)rf_event_wait(&never, ND);
}

static void *reset_fiber(void *arg)
{
	rf_setspecific(rkey, &reset_calls);
	rf_setspecific(akey, &always_calls);
	return NULL;
}

static void test_destructors(void)
{
	struct rf_spawn_attr det = { .detached = 1 };
	struct rf_fiber *f[NFIB], *fe = NULL, *fc = NULL, *fr = NULL;
	int workers = rf_worker_count();
	int i, rc = 0, spawned = 0, wrong = 0, replaced_called = 0, not_null = 0, not_self = 0;
	void *res = NULL;

	memset(joinable, 0, sizeof(joinable));
	memset(replaced, 0, sizeof(replaced));
	memset(detached, 0, sizeof(detached));
	memset(&main_val, 0, sizeof(main_val));
	memset(&exit_val, 0, sizeof(exit_val));
	memset(&cancel_val, 0, sizeof(cancel_val));
	reset_calls = always_calls = 0;

	/* The main fiber's value: destroyed when it finishes (main() checks). */
	is_int(rf_setspecific(dkey, &main_val), 0, tn("the main fiber sets a value"));

	for (i = 0; i < NFIB; i++) {
		rc = rf_spawn_on((unsigned int)(i % workers), &f[i], dtor_fiber,
				 (void *)(intptr_t)i, NULL);
		if (rc)
			break;
		spawned++;
	}
	is_int(rc, 0, tn("spawn %d fibers with values", NFIB));
	for (i = 0; i < spawned; i++) {
		int want = i % 3 == 1 ? 0 : 1;

		rf_join(f[i], NULL, ND);
		/* Read right after the join: the destructor ran before it. */
		wrong += joinable[i].calls != want;
		replaced_called += replaced[i].calls;
		if (want) {
			not_null += !joinable[i].saw_null;
			not_self += joinable[i].self != f[i];
		}
	}
	is_int(wrong, 0, tn("each non-NULL value destroyed once, before rf_join() returns"));
	is_int(replaced_called, 0, tn("replaced values are not destroyed"));
	is_int(not_null, 0, tn("a destructor sees its key's value as NULL"));
	is_int(not_self, 0, tn("destructors run in the finishing fiber"));

	rc = 0;
	for (i = 0; i < NDET && !rc; i++)
		rc = rf_spawn_on((unsigned int)(i % workers), NULL, detached_fiber, &detached[i],
				 &det);
	is_int(rc, 0, tn("spawn %d detached fibers with values (main() checks them)", NDET));

	rc = rf_spawn(&fe, exit_fiber, NULL, NULL);
	if (!rc)
		rc = rf_spawn(&fc, cancelled_fiber, NULL, NULL);
	if (!rc)
		rc = rf_spawn(&fr, reset_fiber, NULL, NULL);
	is_int(rc, 0, tn("spawn the rf_exit(), cancelled and resetting fibers"));
	if (fe) {
		is_int(rf_join(fe, &res, ND), 0, tn("join the fiber that called rf_exit()"));
		is_int(exit_val.calls, 1, tn("rf_exit() runs the destructor once"));
	}
	if (fc) {
		rf_yield();	/* let it park */
		is_int(rf_cancel(fc), 0, tn("cancel the parked fiber"));
		is_int(rf_join(fc, &res, ND), 0, tn("join it"));
		is_int((intptr_t)res, -ECANCELED, tn("its wait -> -ECANCELED"));
		is_int(cancel_val.calls, 1, tn("a cancelled fiber's value is destroyed once"));
	}
	if (fr) {
		is_int(rf_join(fr, NULL, ND), 0, tn("join the fiber with resetting destructors"));
		is_int(reset_calls, 2,
		       tn("a value set again by its destructor is destroyed again"));
		ok(always_calls >= 2 && always_calls <= 4, "%s",
		   tn("a destructor that always sets it again runs a bounded number of times (%d)",
		      always_calls));
	}
}

/* --------------------------------------------------------- deleted keys */

static int deleted_calls;

static void deleted_dtor(void *v)
{
	__atomic_add_fetch(&deleted_calls, 1, __ATOMIC_RELAXED);
}

struct deleted {
	int rc_set, rc_delete, rc_set_after, rc_create, rc_set_new;
	void *get_after, *get_new, *get_new_after;
};

static void *deleting_fiber(void *arg)
{
	struct deleted *d = arg;
	static int x, y;
	rf_key_t k, k2;

	if (rf_key_create(&k, deleted_dtor) != 0)
		return (void *)1;
	d->rc_set = rf_setspecific(k, &x);
	d->rc_delete = rf_key_delete(k);
	d->get_after = rf_getspecific(k);
	d->rc_set_after = rf_setspecific(k, &y);
	d->rc_create = rf_key_create(&k2, deleted_dtor);
	if (d->rc_create == 0) {
		d->get_new = rf_getspecific(k2);
		d->rc_set_new = rf_setspecific(k2, &y);
		d->get_new_after = rf_getspecific(k2);
		rf_setspecific(k2, NULL);
		rf_key_delete(k2);
	}
	return NULL;
}

static void test_deleted(void)
{
	struct deleted d;
	struct rf_fiber *f;
	rf_key_t k, prev = 0;
	int i, rc, fails = 0, same = 0;

	memset(&d, 0, sizeof(d));
	deleted_calls = 0;
	rc = rf_spawn(&f, deleting_fiber, &d, NULL);
	is_int(rc, 0, tn("spawn a fiber that deletes its key"));
	if (!rc)
		rf_join(f, NULL, ND);
	is_int(d.rc_set, 0, tn("set a value"));
	is_int(d.rc_delete, 0, tn("delete the key while the value is set"));
	ok(d.get_after == NULL, "%s", tn("rf_getspecific(deleted key) -> NULL"));
	is_int(d.rc_set_after, -EINVAL, tn("rf_setspecific(deleted key) -> -EINVAL"));
	is_int(d.rc_create, 0, tn("create another key"));
	ok(d.get_new == NULL, "%s", tn("the new key's value starts as NULL in that fiber"));
	is_int(d.rc_set_new, 0, tn("set the new key"));
	ok(d.get_new_after != NULL, "%s", tn("and read it back"));
	is_int(deleted_calls, 0, tn("a deleted key's destructor is not run"));

	/* Delete and re-create, many times: each key is new. */
	for (i = 0; i < 100; i++) {
		rc = rf_key_create(&k, deleted_dtor);
		if (rc) {
			fails++;
			continue;
		}
		same += k == prev;
		prev = k;
		fails += rf_key_delete(k) != 0;
		fails += rf_key_delete(k) != -EINVAL;
	}
	is_int(fails, 0, tn("create, delete, delete again -> 0, 0, -EINVAL, 100 times"));
	is_int(same, 0, tn("a re-created key is never equal to the deleted one"));
}

/* ---------------------------------------------------------------- driver */

static void *fls_main(void *arg)
{
	test_basic();
	test_isolation();
	test_destructors();
	test_deleted();
	return (void *)0x600d;
}

/* Every key's slot: RF_KEYS_MAX keys, then -EAGAIN (no other key exists). */
static void test_exhaustion(void)
{
	rf_key_t keys[RF_KEYS_MAX + 1], again;
	int i, j, n = 0, rc = 0, dup = 0;

	for (i = 0; i <= RF_KEYS_MAX; i++) {
		rc = rf_key_create(&keys[i], NULL);
		if (rc)
			break;
		n++;
	}
	is_int(n, RF_KEYS_MAX, tn("RF_KEYS_MAX keys can be created"));
	is_int(rc, -EAGAIN, tn("one more -> -EAGAIN"));
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			dup += keys[i] == keys[j];
	is_int(dup, 0, tn("all keys differ"));
	if (n > 0) {
		is_int(rf_key_delete(keys[n / 2]), 0, tn("delete one"));
		is_int(rf_key_create(&again, NULL), 0, tn("then one can be created again"));
		keys[n / 2] = again;
		is_int(rf_key_create(&again, NULL), -EAGAIN, tn("and no more"));
	}
	rc = 0;
	for (i = 0; i < n; i++)
		rc |= rf_key_delete(keys[i]);
	is_int(rc, 0, tn("delete them all"));
}

/* Outside any fiber. */
static void test_outside(void)
{
	rf_key_t k;
	int x;

	is_int(rf_key_create(NULL, NULL), -EINVAL, "rf_key_create(NULL) -> -EINVAL");
	is_int(rf_key_create(&k, NULL), 0, "rf_key_create() outside a fiber -> 0");
	ok(rf_getspecific(k) == NULL, "rf_getspecific() outside a fiber -> NULL");
	is_int(rf_setspecific(k, &x), -EPERM, "rf_setspecific() outside a fiber -> -EPERM");
	is_int(rf_key_delete(k), 0, "rf_key_delete() outside a fiber -> 0");
	is_int(rf_key_delete(k), -EINVAL, "rf_key_delete() of a deleted key -> -EINVAL");
	is_int(rf_key_delete(0), -EINVAL, "rf_key_delete(0) -> -EINVAL");
	is_int(rf_key_delete(RF_KEYS_MAX - 1), -EINVAL,
	       "rf_key_delete(RF_KEYS_MAX - 1) -> -EINVAL");
	is_int(rf_key_delete(UINT_MAX), -EINVAL, "rf_key_delete(UINT_MAX) -> -EINVAL");
	ok(rf_getspecific(12345) == NULL, "rf_getspecific(made-up key) -> NULL");
}

int main(void)
{
	struct rf_runtime_opts o;
	size_t i;
	void *res;
	int rc, wrong, rounds;

	test_watchdog(60);
	test_outside();
	test_exhaustion();

	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		test_config_name = configs[i].name;
		memset(&o, 0, sizeof(o));
		o.flags = configs[i].flags;
		o.workers = nworkers_of(o.flags);
		rc = rf_key_create(&dkey, count_dtor);
		rc |= rf_key_create(&rkey, reset_once_dtor);
		rc |= rf_key_create(&akey, always_reset_dtor);
		is_int(rc, 0, tn("create the keys with destructors"));
		res = NULL;
		rc = run_main(&o, fls_main, NULL, &res, NULL);
		is_int(rc, 0, tn("rf_runtime_run() -> 0"));
		ok(res == (void *)0x600d, "%s", tn("the main fiber finished"));
		wrong = 0;
		for (rounds = 0; rounds < NDET; rounds++)
			wrong += detached[rounds].calls != 1;
		is_int(wrong, 0, tn("each detached fiber's value was destroyed once"));
		is_int(main_val.calls, 1, tn("the main fiber's value was destroyed once"));
		rc = rf_key_delete(dkey);
		rc |= rf_key_delete(rkey);
		rc |= rf_key_delete(akey);
		is_int(rc, 0, tn("delete the keys"));
		/* Every value of every fiber is gone: every slot is free again. */
		test_exhaustion();
	}
	test_config_name = NULL;
	return done_testing();
}
