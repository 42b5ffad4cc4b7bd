// SPDX-License-Identifier: GPL-2.0
/*
 * SENDGROUP_IOC_SEND: one shared payload to a recipient list given with each
 * call.
 *
 * The arguments are copied and checked first (args.c): the recipient array
 * whole, every entry validated, and the results array made writable, before
 * any datagram leaves. The shared payload is then copied from user space
 * once into pages (pages.c; taken from a per-CPU pool, not allocated per
 * call), and every recipient gets one datagram from the sender (sender.c)
 * over those pages, with its own prepend and append bytes read from user
 * space as the datagram is built. A recipient's failure goes
 * to its results slot and never stops the others; only a signal does.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "sg_internal.h"

/* Recipient entries and results a call holds without allocating. */
#define SG_INLINE_RECIPIENTS	4

/* Everything one SENDGROUP_IOC_SEND needs after validation. */
struct sg_call {
	struct socket *sock;
	struct sendgroup_send_args args;
	void *recipients;		/* args.recipient_count entries */
	s32 *results;
	struct sg_payload shared;
	struct sendgroup_recipient inline_recipients[SG_INLINE_RECIPIENTS];
	s32 inline_results[SG_INLINE_RECIPIENTS];
	struct sg_sender sender;	/* last: its scratch bvecs stay uninitialised */
};

static int sg_check_args(const struct sendgroup_send_args *args)
{
	int ret;

	if (args->flags || args->reserved)
		return -EINVAL;
	if (sg_check_msg_flags(args->msg_flags))
		return -EINVAL;
	ret = sg_check_entries(args->recipient_count, SENDGROUP_MAX_RECIPIENTS,
			       args->recipient_size, SENDGROUP_RECIPIENT_SIZE_VER0);
	if (ret)
		return ret;
	if (args->shared_len > SENDGROUP_MAX_DATAGRAM)
		return -EMSGSIZE;
	return 0;
}

/* An entry larger than this kernel knows must have an all-zero tail. */
static int sg_check_entry_tail(const void *entry, u32 entry_size, size_t known)
{
	if (entry_size > known && memchr_inv(entry + known, 0, entry_size - known))
		return -E2BIG;
	return 0;
}

/*
 * Copy the recipient array and validate every entry before sending
 * anything; on failure nothing is held.
 */
static int sg_copy_recipients(struct sg_call *call)
{
	const struct sendgroup_send_args *args = &call->args;
	void *recipients;
	u32 i;
	int ret;

	recipients = sg_copy_array(args->recipients,
				   array_size(args->recipient_count, args->recipient_size),
				   call->inline_recipients, sizeof(call->inline_recipients));
	if (IS_ERR(recipients))
		return PTR_ERR(recipients);
	for (i = 0; i < args->recipient_count; i++) {
		const void *entry = recipients + (size_t)i * args->recipient_size;

		ret = sg_check_entry_tail(entry, args->recipient_size,
					  sizeof(struct sendgroup_recipient));
		if (!ret)
			ret = sg_check_recipient(entry);
		if (ret) {
			sg_free_array(recipients, call->inline_recipients);
			return ret;
		}
	}
	call->recipients = recipients;
	return 0;
}

/*
 * The result array is written at the end; clearing it first turns a bad
 * pointer into -EFAULT before any datagram leaves.
 */
static int sg_prepare_results(struct sg_call *call)
{
	u32 count = call->args.recipient_count;

	if (!call->args.results)
		return 0;
	if (clear_user(u64_to_user_ptr(call->args.results), array_size(count, sizeof(s32))))
		return -EFAULT;
	call->results = sg_alloc_array(count, sizeof(s32), call->inline_results,
				       SG_INLINE_RECIPIENTS);
	return call->results ? 0 : -ENOMEM;
}

static int sg_send_all(struct sg_call *call)
{
	u32 count = call->args.recipient_count;
	bool interrupted = fatal_signal_pending(current);
	u32 i, sent = 0, failed = 0;

	for (i = 0; i < count && !interrupted; i++) {
		const struct sendgroup_recipient *r =
			call->recipients + (size_t)i * call->args.recipient_size;
		struct sg_bytes prepend = { .user = r->prepend, .len = r->prepend_len };
		struct sg_bytes append = { .user = r->append, .len = r->append_len };
		union sg_sockaddr sa;
		int ret;

		ret = sg_send_datagram(&call->sender, NULL, &sa, sg_recipient_sockaddr(r, &sa),
				       &prepend, &call->shared, &append);
		if (call->results)
			call->results[i] = ret;
		if (ret)
			failed++;
		else
			sent++;
		interrupted = sg_send_interrupted(ret);
		cond_resched();
	}
	/* Recipients a signal kept us from attempting. */
	for (; i < count; i++)
		if (call->results)
			call->results[i] = -EINTR;

	sg_stat_add(calls, 1);
	sg_stat_add(recipients_sent, sent);
	sg_stat_add(recipient_errors, failed);

	/*
	 * @results was checked writable before sending (sg_prepare_results);
	 * a fault now (the caller unmapped it meanwhile) must not hide what
	 * was sent: a caller retrying on EFAULT would send everything twice.
	 * The results are lost, the count stands, as for a group send.
	 */
	if (call->results &&
	    copy_to_user(u64_to_user_ptr(call->args.results), call->results,
			 array_size(count, sizeof(s32))) && !sent)
		return -EFAULT;
	if (!sent && interrupted)
		return -EINTR;
	return sent;
}

long sendgroup_ioctl_send(void __user *uargs)
{
	struct sg_page_pool *pool;
	struct sg_call *call;
	long ret;
	int err;

	BUILD_BUG_ON(sizeof(struct sendgroup_send_args) != SENDGROUP_SEND_ARGS_SIZE_LATEST);
	BUILD_BUG_ON(sizeof(struct sendgroup_recipient) != SENDGROUP_RECIPIENT_SIZE_LATEST);

	call = kmalloc(sizeof(*call), GFP_KERNEL_ACCOUNT);
	if (!call)
		return -ENOMEM;
	memset(call, 0, offsetof(struct sg_call, sender));

	ret = sg_copy_args(&call->args, sizeof(call->args), SENDGROUP_SEND_ARGS_SIZE_VER0, uargs);
	if (ret)
		goto out_free_call;
	ret = sg_check_args(&call->args);
	if (ret)
		goto out_free_call;

	call->sock = sockfd_lookup(call->args.fd, &err);
	if (!call->sock) {
		ret = err;	/* -EBADF or -ENOTSOCK */
		goto out_free_call;
	}
	ret = sg_check_udp_socket(call->sock);
	if (ret)
		goto out_put_sock;

	ret = sg_copy_recipients(call);
	if (ret)
		goto out_put_sock;
	ret = sg_prepare_results(call);
	if (ret)
		goto out_free_recipients;
	pool = sg_call_pool();
	ret = sg_payload_copy(&call->shared, pool, call->args.shared, call->args.shared_len);
	if (ret)
		goto out_free_results;

	sg_sender_init(&call->sender, call->sock, call->args.msg_flags, pool);
	ret = sg_send_all(call);
	sg_sender_release(&call->sender);
	sg_payload_release(&call->shared);
out_free_results:
	sg_free_array(call->results, call->inline_results);
out_free_recipients:
	sg_free_array(call->recipients, call->inline_recipients);
out_put_sock:
	sockfd_put(call->sock);
out_free_call:
	kfree(call);
	return ret;
}
