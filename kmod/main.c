// SPDX-License-Identifier: GPL-2.0
/*
 * sendgroup - send one shared UDP payload to many receivers in one call.
 *
 * /dev/sendgroup implements the sendgroup() call of Lahav et al., "Group
 * Unicast for the Real World" (NOSSDAV'08) as an ioctl (send.c), plus
 * kernel-resident groups whose members live in the kernel (group.c); the
 * other files serve both (sg_internal.h lists them). This file is the misc
 * device: ioctl dispatch, SENDGROUP_IOC_INFO and the counters under
 * /sys/class/misc/sendgroup/stats/.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/uaccess.h>

#include "sg_internal.h"

DEFINE_PER_CPU(struct sendgroup_stats, sendgroup_stats);

/* ---- SENDGROUP_IOC_INFO ----------------------------------------------- */

static long sendgroup_ioctl_info(void __user *uinfo)
{
	struct sendgroup_info info = {
		.size = sizeof(info),
		.abi_version = SENDGROUP_ABI_VERSION,
		.max_recipients = SENDGROUP_MAX_RECIPIENTS,
		.max_datagram = SENDGROUP_MAX_DATAGRAM,
		.recipient_size = SENDGROUP_RECIPIENT_SIZE_LATEST,
		.send_args_size = SENDGROUP_SEND_ARGS_SIZE_LATEST,
		.features = SENDGROUP_FEATURE_SHARED_PAGES | SENDGROUP_FEATURE_GROUPS,
	};
	u32 usize;

	BUILD_BUG_ON(sizeof(info) != SENDGROUP_INFO_SIZE_VER0);
	if (sg_xmit_enabled())
		info.features |= SENDGROUP_FEATURE_DIRECT_XMIT;

	if (get_user(usize, (u32 __user *)uinfo))
		return -EFAULT;
	if (usize < SENDGROUP_INFO_SIZE_VER0)
		return -EINVAL;
	/* A newer caller's larger struct gets zeros where we know nothing. */
	if (usize > sizeof(info) &&
	    clear_user(uinfo + sizeof(info), usize - sizeof(info)))
		return -EFAULT;
	if (copy_to_user(uinfo, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long sendgroup_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SENDGROUP_IOC_SEND:
		return sendgroup_ioctl_send(argp);
	case SENDGROUP_IOC_INFO:
		return sendgroup_ioctl_info(argp);
	case SENDGROUP_IOC_GROUP_CREATE:
		return sendgroup_ioctl_group_create(argp);
	default:
		return -ENOTTY;
	}
}

/* ---- counters: /sys/class/misc/sendgroup/stats/ ------------------------ */

static u64 sg_stat_sum(size_t offset)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *(u64 *)((char *)per_cpu_ptr(&sendgroup_stats, cpu) + offset);
	return sum;
}

#define SG_STAT_ATTR(field)							\
static ssize_t field##_show(struct device *dev,					\
			    struct device_attribute *attr, char *buf)		\
{										\
	return sysfs_emit(buf, "%llu\n",					\
			  sg_stat_sum(offsetof(struct sendgroup_stats, field)));\
}										\
static DEVICE_ATTR_RO(field)

SG_STAT_ATTR(calls);
SG_STAT_ATTR(recipients_sent);
SG_STAT_ATTR(recipient_errors);
SG_STAT_ATTR(shared_copies);
SG_STAT_ATTR(shared_bytes_copied);
SG_STAT_ATTR(private_bytes_copied);
SG_STAT_ATTR(copied_sends);
SG_STAT_ATTR(group_calls);
SG_STAT_ATTR(groups_live);
SG_STAT_ATTR(members_live);
SG_STAT_ATTR(direct_sends);
SG_STAT_ATTR(route_lookups);
SG_STAT_ATTR(routes_cached);
SG_STAT_ATTR(lsm_refusals);

static struct attribute *sendgroup_stats_attrs[] = {
	&dev_attr_calls.attr,
	&dev_attr_recipients_sent.attr,
	&dev_attr_recipient_errors.attr,
	&dev_attr_shared_copies.attr,
	&dev_attr_shared_bytes_copied.attr,
	&dev_attr_private_bytes_copied.attr,
	&dev_attr_copied_sends.attr,
	&dev_attr_group_calls.attr,
	&dev_attr_groups_live.attr,
	&dev_attr_members_live.attr,
	&dev_attr_direct_sends.attr,
	&dev_attr_route_lookups.attr,
	&dev_attr_routes_cached.attr,
	&dev_attr_lsm_refusals.attr,
	NULL,
};

static const struct attribute_group sendgroup_stats_group = {
	.name = "stats",
	.attrs = sendgroup_stats_attrs,
};

static const struct attribute_group *sendgroup_groups[] = {
	&sendgroup_stats_group,
	NULL,
};

static const struct file_operations sendgroup_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = sendgroup_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice sendgroup_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "sendgroup",
	/*
	 * The device grants nothing beyond the caller's own socket: datagrams
	 * pass routing, netfilter, cgroup egress checks and the LSM's
	 * socket_sendmsg hook (for every datagram on both paths); memory a
	 * caller makes it allocate is charged to the caller's memory cgroup.
	 */
	.mode = 0666,
	.fops = &sendgroup_fops,
	.groups = sendgroup_groups,
};

static int __init sendgroup_init(void)
{
	sg_call_pools_init();
	return misc_register(&sendgroup_misc);
}

static void __exit sendgroup_exit(void)
{
	misc_deregister(&sendgroup_misc);
	/* No call can run any more: nothing takes pages from the pools. */
	sg_call_pools_release();
	/* Let queued zero-copy RCU callbacks finish before our text goes away. */
	rcu_barrier();
}

module_init(sendgroup_init);
module_exit(sendgroup_exit);

MODULE_DESCRIPTION("Group unicast: one shared UDP payload to many receivers per call");
MODULE_AUTHOR("GroupUnicast developers");
MODULE_LICENSE("GPL");
