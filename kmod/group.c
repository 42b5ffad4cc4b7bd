// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel-resident groups: SENDGROUP_IOC_GROUP_CREATE and the group fd.
 *
 * A group is bound to one UDP socket and keeps its members (destination and
 * private bytes) in the kernel, so a group send passes only the payloads:
 * the recipient array is not copied from user space on every call.
 *
 * Members live in an xarray keyed by member id. Membership changes are
 * serialised by the group's mutex. Sends walk the xarray holding the
 * group's walk_lock for reading (they sleep, for as long as a blocking
 * socket makes them); REMOVE and UPDATE unlink members holding it for
 * writing, so what they unlinked is seen by no send once they hold it: they
 * free it at once, and REMOVE can promise that no send reaches a member once
 * it returned. The lock is the group's own: a send blocked on one group
 * delays membership changes of that group only, never another user's.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/rwsem.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "sg_internal.h"

struct sg_member {
	u64 id;
	union sg_sockaddr addr;
	int addrlen;		/* or the -errno an unusable address sends with */
	struct sg_route route;	/* cached by the direct path */
	u32 prepend_len;
	u32 append_len;
	u8 private[];		/* prepend, then append */
};

struct sg_group {
	struct socket *sock;	/* holds a reference on the socket's file */
	struct mutex lock;	/* serialises membership changes (held while they wait for walk_lock) */
	struct rw_semaphore walk_lock;	/* read: a send walks @members; write: unlinking */
	struct xarray members;	/* member id -> struct sg_member */
	u32 count;		/* members, under @lock */
	struct sg_page_pool pool;	/* payload and private-byte pages between sends */
	struct sg_group_send *spare;	/* a send's state, kept for the next send */
};

static void sg_member_free(struct sg_member *member)
{
	sg_route_release(&member->route);
	kfree(member);
	sg_stat_add(members_live, -1);
}

/* ---- group fd lifetime ------------------------------------------------ */

static int sg_group_release(struct inode *inode, struct file *file)
{
	struct sg_group *group = file->private_data;
	struct sg_member *member;
	unsigned long id;

	/* No ioctl can run any more: the file has no users left. */
	xa_for_each(&group->members, id, member)
		sg_member_free(member);
	xa_destroy(&group->members);
	sg_pool_release(&group->pool);
	kfree(group->spare);
	sockfd_put(group->sock);
	mutex_destroy(&group->lock);
	kfree(group);
	sg_stat_add(groups_live, -1);
	return 0;
}

/* ---- argument helpers ------------------------------------------------- */

static int sg_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Sort the ids of one call: -EINVAL when one repeats. */
static int sg_sort_ids(u64 *ids, u32 count)
{
	u32 i;

	sort(ids, count, sizeof(*ids), sg_cmp_u64, NULL);
	for (i = 1; i < count; i++)
		if (ids[i] == ids[i - 1])
			return -EINVAL;
	return 0;
}

/* Member ids index the xarray, so they must fit an unsigned long. */
static bool sg_id_valid(u64 id)
{
	return id == (unsigned long)id;
}

/*
 * Build a member from the user entry at @uentry of @entry_size bytes (at
 * least struct sendgroup_member): copy it, validate it, then copy its
 * private bytes in. Entries are copied one at a time, so a call holds no
 * copy of the caller's array: only the members it builds, each charged.
 */
static struct sg_member *sg_member_from_user(const void __user *uentry, u32 entry_size)
{
	struct sendgroup_member entry;
	const struct sendgroup_member *m = &entry;
	const struct sendgroup_recipient *r = &m->recipient;
	struct sg_member *member;
	u64 private_len;
	int ret;

	if (copy_from_user(&entry, uentry, sizeof(entry)))
		return ERR_PTR(-EFAULT);
	if (entry_size > sizeof(entry)) {
		ret = check_zeroed_user(uentry + sizeof(entry), entry_size - sizeof(entry));
		if (ret <= 0)
			return ERR_PTR(ret ?: -E2BIG);
	}
	private_len = (u64)r->prepend_len + r->append_len;
	if (!sg_id_valid(m->id))
		return ERR_PTR(-EINVAL);
	ret = sg_check_recipient(r);
	if (ret)
		return ERR_PTR(ret);
	if (private_len > SENDGROUP_MAX_MEMBER_PRIVATE)
		return ERR_PTR(-EMSGSIZE);

	member = kmalloc(struct_size(member, private, private_len), SG_GFP_CALLER);
	if (!member)
		return ERR_PTR(-ENOMEM);
	member->id = m->id;
	member->addrlen = sg_recipient_sockaddr(r, &member->addr);
	sg_route_init(&member->route);
	member->prepend_len = r->prepend_len;
	member->append_len = r->append_len;
	if (copy_from_user(member->private, u64_to_user_ptr(r->prepend), r->prepend_len) ||
	    copy_from_user(member->private + r->prepend_len, u64_to_user_ptr(r->append),
			   r->append_len)) {
		kfree(member);
		return ERR_PTR(-EFAULT);
	}
	sg_stat_add(members_live, 1);
	return member;
}

/* ---- ADD / UPDATE ----------------------------------------------------- */

static void sg_free_members(struct sg_member **members, u32 count)
{
	u32 i;

	for (i = 0; i < count; i++)
		if (!IS_ERR_OR_NULL(members[i]))
			sg_member_free(members[i]);
}

/* Copy and validate a members_args call's entries; returns their ids, sorted. */
static int sg_members_from_user(const struct sendgroup_members_args *args,
				struct sg_member ***out_members, u64 **out_ids)
{
	const void __user *entries = u64_to_user_ptr(args->members);
	struct sg_member **members;
	u64 *ids;
	u32 i;
	int ret;

	if (args->flags)
		return -EINVAL;
	ret = sg_check_entries(args->count, SENDGROUP_MAX_MEMBERS, args->member_size,
			       SENDGROUP_MEMBER_SIZE_VER0);
	if (ret)
		return ret;

	members = kvcalloc(args->count, sizeof(*members), SG_GFP_CALLER);
	ids = kvcalloc(args->count, sizeof(*ids), SG_GFP_CALLER);
	if (!members || !ids) {
		ret = -ENOMEM;
		goto out_free_members;
	}
	for (i = 0; i < args->count; i++) {
		members[i] = sg_member_from_user(entries + (size_t)i * args->member_size,
						 args->member_size);
		if (IS_ERR(members[i])) {
			ret = PTR_ERR(members[i]);
			goto out_free_members;
		}
		ids[i] = members[i]->id;
		cond_resched();
	}
	ret = sg_sort_ids(ids, args->count);
	if (ret)
		goto out_free_members;
	*out_members = members;
	*out_ids = ids;
	return 0;

out_free_members:
	if (members)
		sg_free_members(members, args->count);
	kvfree(members);
	kvfree(ids);
	return ret;
}

/* Under the lock. On success the members belong to the xarray and members[] is emptied. */
static int sg_members_add_locked(struct sg_group *group, struct sg_member **members,
				 const u64 *ids, u32 count)
{
	u32 i, reserved;
	int ret;

	if ((u64)group->count + count > SENDGROUP_MAX_MEMBERS)
		return -ENOSPC;
	for (i = 0; i < count; i++)
		if (xa_load(&group->members, ids[i]))
			return -EEXIST;
	/*
	 * Room first, invisible to sends: running out of memory half-way
	 * then takes back nothing a send could have seen.
	 */
	for (reserved = 0; reserved < count; reserved++) {
		ret = xa_reserve(&group->members, ids[reserved], SG_GFP_CALLER);
		if (ret) {
			for (i = 0; i < reserved; i++)
				xa_release(&group->members, ids[i]);
			return ret;
		}
	}
	/* Storing into a reserved slot allocates nothing: it cannot fail. */
	for (i = 0; i < count; i++)
		xa_store(&group->members, members[i]->id, members[i], SG_GFP_CALLER);
	group->count += count;
	memset(members, 0, count * sizeof(*members));
	return 0;
}

/* Under the lock. On success members[] holds the versions the update replaced. */
static int sg_members_update_locked(struct sg_group *group, struct sg_member **members,
				    const u64 *ids, u32 count)
{
	u32 i;
	int ret;

	for (i = 0; i < count; i++)
		if (!xa_load(&group->members, ids[i]))
			return -ENOENT;
	ret = down_write_killable(&group->walk_lock);
	if (ret)
		return ret;
	/* Replacing an existing entry allocates nothing: it cannot fail. */
	for (i = 0; i < count; i++)
		members[i] = xa_store(&group->members, members[i]->id, members[i], SG_GFP_CALLER);
	up_write(&group->walk_lock);
	return 0;
}

typedef int (*sg_members_apply_fn)(struct sg_group *group, struct sg_member **members,
				   const u64 *ids, u32 count);

/*
 * ADD and UPDATE take the same entries: copy and validate them, apply them
 * under the group's lock, then free whatever members[] holds afterwards
 * (replaced versions, or a refused call's new members): no send can see it.
 */
static long sg_group_ioctl_members(struct sg_group *group, void __user *uargs,
				   sg_members_apply_fn apply)
{
	struct sendgroup_members_args args;
	struct sg_member **members;
	u64 *ids;
	int ret;

	ret = sg_copy_args(&args, sizeof(args), SENDGROUP_MEMBERS_ARGS_SIZE_VER0, uargs);
	if (ret)
		return ret;
	ret = sg_members_from_user(&args, &members, &ids);
	if (ret)
		return ret;

	ret = mutex_lock_killable(&group->lock);
	if (!ret) {
		ret = apply(group, members, ids, args.count);
		mutex_unlock(&group->lock);
	}

	sg_free_members(members, args.count);
	kvfree(members);
	kvfree(ids);
	return ret;
}

/* ---- REMOVE ----------------------------------------------------------- */

static long sg_group_ioctl_remove(struct sg_group *group, void __user *uargs)
{
	struct sendgroup_members_args args;
	struct sg_member **removed;
	u64 *ids;
	u32 i;
	int ret;

	ret = sg_copy_args(&args, sizeof(args), SENDGROUP_MEMBERS_ARGS_SIZE_VER0, uargs);
	if (ret)
		return ret;
	if (args.flags || !args.count || args.member_size != sizeof(u64))
		return -EINVAL;
	if (args.count > SENDGROUP_MAX_MEMBERS)
		return -E2BIG;

	ids = sg_memdup_user(u64_to_user_ptr(args.members), array_size(args.count, sizeof(u64)));
	if (IS_ERR(ids))
		return PTR_ERR(ids);
	removed = kvcalloc(args.count, sizeof(*removed), SG_GFP_CALLER);
	if (!removed) {
		ret = -ENOMEM;
		goto out_free_ids;
	}
	ret = sg_sort_ids(ids, args.count);
	if (ret)
		goto out_free_removed;

	ret = mutex_lock_killable(&group->lock);
	if (ret)
		goto out_free_removed;
	for (i = 0; i < args.count; i++) {
		if (!sg_id_valid(ids[i]) || !xa_load(&group->members, ids[i])) {
			ret = -ENOENT;
			goto out_unlock;
		}
	}
	/* Sends that may still see the members finish first; later ones cannot. */
	ret = down_write_killable(&group->walk_lock);
	if (ret)
		goto out_unlock;
	for (i = 0; i < args.count; i++)
		removed[i] = xa_erase(&group->members, ids[i]);
	up_write(&group->walk_lock);
	group->count -= args.count;
out_unlock:
	mutex_unlock(&group->lock);
	/* What was erased above (nothing when the call failed): no send sees it. */
	sg_free_members(removed, args.count);
out_free_removed:
	kvfree(removed);
out_free_ids:
	kvfree(ids);
	return ret;
}

/* ---- LIST ------------------------------------------------------------- */

static long sg_group_ioctl_list(struct sg_group *group, struct sendgroup_list_args __user *uargs)
{
	struct sendgroup_list_args args;
	struct sg_member *member;
	unsigned long id;
	u32 written = 0, count;
	u64 *ids = NULL;
	int ret;

	ret = sg_copy_args(&args, sizeof(args), SENDGROUP_LIST_ARGS_SIZE_VER0, uargs);
	if (ret)
		return ret;
	if (args.reserved)
		return -EINVAL;

	ret = mutex_lock_killable(&group->lock);
	if (ret)
		return ret;
	count = group->count;
	if (args.capacity) {
		ids = kvmalloc_array(min(args.capacity, count ?: 1), sizeof(*ids), SG_GFP_CALLER);
		if (!ids) {
			mutex_unlock(&group->lock);
			return -ENOMEM;
		}
		xa_for_each(&group->members, id, member) {
			if (written == args.capacity)
				break;
			ids[written++] = member->id;
		}
	}
	mutex_unlock(&group->lock);

	if (put_user(count, &uargs->count) ||
	    (written && copy_to_user(u64_to_user_ptr(args.ids), ids, written * sizeof(*ids))))
		ret = -EFAULT;
	kvfree(ids);
	return ret ?: written;
}

/* ---- SEND ------------------------------------------------------------- */

/* Payloads a send describes without allocating (one audio and one video, say). */
#define SG_INLINE_PAYLOADS	4

/* One SEND's state; each group keeps one between sends (group->spare). */
struct sg_group_send {
	struct sendgroup_group_send_args args;
	struct sendgroup_payload *payload_descs;
	struct sg_payload *payloads;
	u32 sent;
	u32 failed;
	bool failures_faulted;	/* the caller's mappings changed under the call */
	bool interrupted;	/* by a signal: the rest was recorded as -EINTR */
	struct sendgroup_payload inline_descs[SG_INLINE_PAYLOADS];
	struct sg_payload inline_payloads[SG_INLINE_PAYLOADS];
	struct sg_sender sender;	/* last: its scratch bvecs stay uninitialised */
};

static struct sg_group_send *sg_group_send_get(struct sg_group *group)
{
	struct sg_group_send *gs = xchg(&group->spare, NULL);

	if (!gs)
		gs = kmalloc(sizeof(*gs), GFP_KERNEL_ACCOUNT);
	if (gs)
		memset(gs, 0, offsetof(struct sg_group_send, sender));
	return gs;
}

static void sg_group_send_put(struct sg_group *group, struct sg_group_send *gs)
{
	if (cmpxchg(&group->spare, NULL, gs))
		kfree(gs);
}

static int sg_group_send_check(const struct sendgroup_group_send_args *args)
{
	if (args->flags || sg_check_msg_flags(args->msg_flags))
		return -EINVAL;
	if (!args->payload_count)
		return -EINVAL;
	if (args->payload_count > SENDGROUP_MAX_PAYLOADS)
		return -E2BIG;
	return 0;
}

/*
 * What the send writes back (failure_count, failure records) must be
 * writable before anything is sent, or a caller would learn of the fault
 * only after every datagram left. No failure array (0) means no records,
 * whatever the capacity; a capacity beyond what one call can fail is
 * bounded by that.
 */
static int sg_group_send_check_writable(struct sg_group_send *gs,
					struct sendgroup_group_send_args __user *uargs)
{
	u64 most = (u64)SENDGROUP_MAX_MEMBERS * gs->args.payload_count;

	if (!gs->args.failures)
		gs->args.failure_capacity = 0;
	gs->args.failure_capacity = min_t(u64, gs->args.failure_capacity, most);
	if (put_user(0, &uargs->failure_count))
		return -EFAULT;
	if (gs->args.failure_capacity &&
	    clear_user(u64_to_user_ptr(gs->args.failures),
		       array_size(gs->args.failure_capacity, sizeof(struct sendgroup_failure))))
		return -EFAULT;
	return 0;
}

/* Release what sg_group_send_copy_payloads() copied, all or part of it. */
static void sg_group_send_release_payloads(struct sg_group_send *gs)
{
	u32 i;

	if (gs->payloads)
		for (i = 0; i < gs->args.payload_count; i++)
			sg_payload_release(&gs->payloads[i]);
	sg_free_array(gs->payloads, gs->inline_payloads);
	sg_free_array(gs->payload_descs, gs->inline_descs);
}

/* Copy the payload descriptors, check them, then every payload; on failure nothing is held. */
static int sg_group_send_copy_payloads(struct sg_group *group, struct sg_group_send *gs)
{
	u32 i, count = gs->args.payload_count;
	struct sendgroup_payload *descs;
	int ret;

	descs = sg_copy_array(gs->args.payloads, array_size(count, sizeof(*descs)),
			      gs->inline_descs, sizeof(gs->inline_descs));
	if (IS_ERR(descs))
		return PTR_ERR(descs);
	gs->payload_descs = descs;
	for (i = 0; i < count; i++) {
		if (descs[i].reserved) {
			ret = -EINVAL;
			goto out_release_payloads;
		}
		if (descs[i].len > SENDGROUP_MAX_DATAGRAM) {
			ret = -EMSGSIZE;
			goto out_release_payloads;
		}
	}
	gs->payloads = sg_alloc_array(count, sizeof(*gs->payloads), gs->inline_payloads,
				      SG_INLINE_PAYLOADS);
	if (!gs->payloads) {
		ret = -ENOMEM;
		goto out_release_payloads;
	}
	for (i = 0; i < count; i++) {
		ret = sg_payload_copy(&gs->payloads[i], &group->pool, descs[i].data, descs[i].len);
		if (ret)
			goto out_release_payloads;
	}
	return 0;

out_release_payloads:
	sg_group_send_release_payloads(gs);
	return ret;
}

static void sg_group_send_record_failure(struct sg_group_send *gs, u64 member_id,
					 u32 payload_index, int error)
{
	struct sendgroup_failure failure = {
		.member_id = member_id,
		.payload_index = payload_index,
		.error = error,
	};
	struct sendgroup_failure __user *slots = u64_to_user_ptr(gs->args.failures);

	if (gs->failed < gs->args.failure_capacity && !gs->failures_faulted &&
	    copy_to_user(&slots[gs->failed], &failure, sizeof(failure)))
		gs->failures_faulted = true;
	gs->failed++;
}

/*
 * Every member gets every payload, or a failure record. Once a signal
 * interrupted the call (sg_send_interrupted()), the datagrams not attempted
 * are recorded as -EINTR without sending, so that sent + failure_count
 * covers every (member, payload) the call walked.
 */
static void sg_group_send_all(struct sg_group *group, struct sg_group_send *gs)
{
	bool interrupted = fatal_signal_pending(current);
	struct sg_member *member;
	unsigned long id;
	u32 p;

	for (p = 0; p < gs->args.payload_count; p++) {
		xa_for_each(&group->members, id, member) {
			struct sg_bytes prepend = {
				.kernel = member->private, .len = member->prepend_len,
			};
			struct sg_bytes append = {
				.kernel = member->private + member->prepend_len,
				.len = member->append_len,
			};
			int ret = -EINTR;

			if (!interrupted) {
				ret = sg_send_datagram(&gs->sender, &member->route, &member->addr,
						       member->addrlen, &prepend, &gs->payloads[p],
						       &append);
				interrupted = sg_send_interrupted(ret);
			}
			if (ret)
				sg_group_send_record_failure(gs, member->id, p, ret);
			else
				gs->sent++;
			cond_resched();
		}
	}
	gs->interrupted = interrupted;
}

static long sg_group_ioctl_send(struct sg_group *group,
				struct sendgroup_group_send_args __user *uargs)
{
	struct sg_group_send *gs;
	long ret;

	gs = sg_group_send_get(group);
	if (!gs)
		return -ENOMEM;
	ret = sg_copy_args(&gs->args, sizeof(gs->args), SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0, uargs);
	if (ret)
		goto out_put_send_state;
	ret = sg_group_send_check(&gs->args);
	if (ret)
		goto out_put_send_state;
	ret = sg_group_send_check_writable(gs, uargs);
	if (ret)
		goto out_put_send_state;
	ret = sg_check_udp_socket(group->sock);
	if (ret)
		goto out_put_send_state;
	ret = sg_group_send_copy_payloads(group, gs);
	if (ret)
		goto out_put_send_state;
	sg_sender_init(&gs->sender, group->sock, gs->args.msg_flags, &group->pool);

	ret = down_read_killable(&group->walk_lock);
	if (ret)
		goto out_release_sender;
	sg_group_send_all(group, gs);
	up_read(&group->walk_lock);
	sg_stat_add(group_calls, 1);
	sg_stat_add(recipients_sent, gs->sent);
	sg_stat_add(recipient_errors, gs->failed);

	/*
	 * Once datagrams left, the call reports them: a fault here means the
	 * caller unmapped or protected its arguments during the call, and
	 * EFAULT would invite a retry that sends everything again.
	 */
	if (put_user(gs->failed, &uargs->failure_count))
		gs->failures_faulted = true;
	ret = !gs->sent && gs->interrupted ? -EINTR : gs->sent;

out_release_sender:
	sg_sender_release(&gs->sender);
	sg_group_send_release_payloads(gs);
out_put_send_state:
	sg_group_send_put(group, gs);
	return ret;
}

/* ---- group fd --------------------------------------------------------- */

static long sg_group_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct sg_group *group = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SENDGROUP_GROUP_IOC_ADD:
		return sg_group_ioctl_members(group, argp, sg_members_add_locked);
	case SENDGROUP_GROUP_IOC_UPDATE:
		return sg_group_ioctl_members(group, argp, sg_members_update_locked);
	case SENDGROUP_GROUP_IOC_REMOVE:
		return sg_group_ioctl_remove(group, argp);
	case SENDGROUP_GROUP_IOC_LIST:
		return sg_group_ioctl_list(group, argp);
	case SENDGROUP_GROUP_IOC_SEND:
		return sg_group_ioctl_send(group, argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations sg_group_fops = {
	.owner = THIS_MODULE,
	.release = sg_group_release,
	.unlocked_ioctl = sg_group_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/* ---- SENDGROUP_IOC_GROUP_CREATE (on /dev/sendgroup) -------------------- */

long sendgroup_ioctl_group_create(void __user *uargs)
{
	struct sendgroup_group_create_args args;
	struct sg_group *group;
	struct socket *sock;
	int ret, fd;

	BUILD_BUG_ON(sizeof(struct sendgroup_group_create_args) != SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sendgroup_member) != SENDGROUP_MEMBER_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sendgroup_members_args) != SENDGROUP_MEMBERS_ARGS_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sendgroup_list_args) != SENDGROUP_LIST_ARGS_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sendgroup_group_send_args) != SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0);

	ret = sg_copy_args(&args, sizeof(args), SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0, uargs);
	if (ret)
		return ret;
	if (args.flags || args.reserved)
		return -EINVAL;

	sock = sockfd_lookup(args.fd, &ret);
	if (!sock)
		return ret;	/* -EBADF or -ENOTSOCK */
	ret = sg_check_udp_socket(sock);
	if (ret)
		goto out_put_sock;

	group = kzalloc(sizeof(*group), GFP_KERNEL_ACCOUNT);
	if (!group) {
		ret = -ENOMEM;
		goto out_put_sock;
	}
	group->sock = sock;
	mutex_init(&group->lock);
	init_rwsem(&group->walk_lock);
	xa_init(&group->members);
	sg_pool_init(&group->pool);

	fd = anon_inode_getfd("[sendgroup-group]", &sg_group_fops, group, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto out_free_group;
	}
	sg_stat_add(groups_live, 1);
	return fd;

out_free_group:
	mutex_destroy(&group->lock);
	kfree(group);
out_put_sock:
	sockfd_put(sock);
	return ret;
}
