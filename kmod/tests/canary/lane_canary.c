// SPDX-License-Identifier: GPL-2.0
/*
 * The debug kernel lane's canary: one deliberate bug per detector, so the
 * lane proves on every run that each detector is on and that its dmesg check
 * (scripts/vm/guest) sees the report. Never load it anywhere else.
 *   echo uaf > /sys/module/lane_canary/parameters/trigger
 */
#include <linux/delay.h>
#include <linux/kfence.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timer.h>

/* Read through a volatile pointer so the compiler keeps the bad access. */
static u8 canary_read(const void *p)
{
	return *(const volatile u8 *)p;
}

static void canary_kasan_use_after_free(void)
{
	u8 *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	pr_info("lane_canary: read after free: %u\n", canary_read(p));
}

static void canary_kfence_use_after_free(void)
{
	/* KFENCE samples one allocation per interval: wait for one of ours. */
	for (int i = 0; i < 2000; i++) {
		u8 *p = kmalloc(32, GFP_KERNEL);

		if (!p)
			return;
		if (is_kfence_address(p)) {
			kfree(p);
			pr_info("lane_canary: read after free: %u\n", canary_read(p));
			return;
		}
		kfree(p);
		msleep(5);
	}
	pr_info("lane_canary: no KFENCE allocation sampled\n");
}

static void canary_leak(void)
{
	void *p = kmalloc(128, GFP_KERNEL);

	pr_info("lane_canary: leaked an object at %px\n", p);
}

static int canary_shift = 40;
module_param_named(shift, canary_shift, int, 0600);

static void canary_ubsan_shift(void)
{
	volatile int one = 1;

	pr_info("lane_canary: 1 << %d = %d\n", canary_shift, one << canary_shift);
}

static void canary_list_double_add(void)
{
	static LIST_HEAD(head);
	static struct list_head entry;

	INIT_LIST_HEAD(&head);
	list_add(&entry, &head);
	list_add(&entry, &head);
	INIT_LIST_HEAD(&head);
}

static void canary_sleep_in_atomic(void)
{
	static DEFINE_SPINLOCK(lock);

	/* The check alone: really sleeping here hung the guest once. */
	spin_lock(&lock);
	might_sleep();
	spin_unlock(&lock);
}

struct canary_timer {
	struct timer_list timer;
};

static void canary_timer_fn(struct timer_list *t) {}

static void canary_free_active_timer(void)
{
	struct canary_timer *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return;
	timer_setup(&c->timer, canary_timer_fn, 0);
	mod_timer(&c->timer, jiffies + 3600 * HZ);
	kfree(c);	/* debugobjects reports it and deactivates the timer */
}

static void canary_lock_inversion(void)
{
	static DEFINE_MUTEX(a);
	static DEFINE_MUTEX(b);

	mutex_lock(&a);
	mutex_lock(&b);
	mutex_unlock(&b);
	mutex_unlock(&a);
	mutex_lock(&b);
	mutex_lock(&a);
	mutex_unlock(&a);
	mutex_unlock(&b);
}

static const struct {
	const char *name;
	void (*fn)(void);
} canary_bugs[] = {
	{ "kasan", canary_kasan_use_after_free },
	{ "kfence", canary_kfence_use_after_free },
	{ "kmemleak", canary_leak },
	{ "ubsan", canary_ubsan_shift },
	{ "list", canary_list_double_add },
	{ "atomic-sleep", canary_sleep_in_atomic },
	{ "debugobjects", canary_free_active_timer },
	{ "WARN", NULL },
	{ "lockdep", canary_lock_inversion },	/* lockdep turns itself off after one */
};

static int canary_trigger(const char *val, const struct kernel_param *kp)
{
	for (size_t i = 0; i < ARRAY_SIZE(canary_bugs); i++) {
		if (!sysfs_streq(val, canary_bugs[i].name))
			continue;
		if (canary_bugs[i].fn)
			canary_bugs[i].fn();
		else
			WARN(1, "lane_canary: a deliberate WARN\n");
		return 0;
	}
	return -EINVAL;
}

static const struct kernel_param_ops canary_trigger_ops = {
	.set = canary_trigger,
};
module_param_cb(trigger, &canary_trigger_ops, NULL, 0200);
MODULE_PARM_DESC(trigger, "commit one deliberate bug: kasan, kfence, kmemleak, ubsan, list, atomic-sleep, debugobjects, WARN, lockdep");

MODULE_DESCRIPTION("deliberate bugs that prove the debug kernel lane's detectors fire");
MODULE_LICENSE("GPL");
