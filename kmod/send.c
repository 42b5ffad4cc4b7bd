// SPDX-License-Identifier: GPL-2.0
/*
 * sendgroup - send one shared UDP payload to many receivers in one call.
 *
 * /dev/sendgroup implements the sendgroup() call of Lahav et al., "Group
 * Unicast for the Real World" (NOSSDAV'08) as an ioctl. The shared payload is
 * copied from user space once per call into pages; every receiver gets one
 * datagram, built by the socket's own sendmsg path, whose frags reference
 * those pages. Per-receiver prepend and append bytes are copied into pages of
 * a per-call arena and referenced the same way.
 *
 * Each datagram is one uncorked sock_sendmsg() on the caller's socket, so it
 * is indivisible with respect to other senders on that socket, and routing,
 * netfilter, cgroup-BPF, LSM and socket options apply exactly as for sendmsg.
 *
 * How the pages are referenced depends on the kernel:
 *  - 6.5 and later: MSG_SPLICE_PAGES with a bvec iterator (UDP over IPv4 and
 *    IPv6 splice the pages into the skb as frags).
 *  - 6.0 to 6.4 (Debian 12's 6.1): MSG_ZEROCOPY with a kernel-owned
 *    struct ubuf_info in msg_ubuf, the mechanism io_uring's zero-copy send
 *    uses. The stack falls back to copying where the device cannot
 *    checksum (no CHECKSUM_PARTIAL) or the datagram needs IP fragmentation.
 * A datagram that would need more frags than an skb holds is sent through the
 * copying path instead and counted in copied_sends.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <linux/udp.h>
#include <linux/uio.h>
#include <linux/version.h>
#include <net/sock.h>

#include <uapi/linux/sendgroup.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 0, 0)
#error "sendgroup needs Linux 6.0 or later (msghdr.msg_ubuf)"
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define SG_SPLICE_PAGES 1	/* UDP honours MSG_SPLICE_PAGES */
#else
#define SG_SPLICE_PAGES 0	/* use msg_ubuf zero-copy instead */
#endif

/* Pages that can hold one datagram's shared payload. */
#define SG_SHARED_PAGES		DIV_ROUND_UP(SENDGROUP_MAX_DATAGRAM, PAGE_SIZE)
/*
 * bvec entries one recipient can need: prepend and append may each straddle
 * page boundaries of the arena; the datagram is at most 64 KiB in total.
 */
#define SG_MAX_BVECS		(3 * (SG_SHARED_PAGES + 1))
/* Larger entries are refused: nothing legitimate needs a page per recipient. */
#define SG_MAX_RECIPIENT_SIZE	PAGE_SIZE

struct sendgroup_stats {
	u64 calls;
	u64 recipients_sent;
	u64 recipient_errors;
	u64 shared_copies;
	u64 shared_bytes_copied;
	u64 private_bytes_copied;
	u64 copied_sends;
};

static DEFINE_PER_CPU(struct sendgroup_stats, sendgroup_stats);

#define sg_stat_add(field, n) this_cpu_add(sendgroup_stats.field, (n))

/* The shared payload, copied from user space once per call. */
struct sg_payload {
	struct page *pages[SG_SHARED_PAGES];
	unsigned int nr_pages;
	unsigned int len;
};

/*
 * Append-only page arena for prepend/append bytes. A page is never written
 * again once handed to the stack, and skbs take their own page references.
 * A page the arena moves away from may still be described by the bvecs of
 * the datagram being built, so it is retired, and released only after that
 * datagram was sent.
 */
#define SG_ARENA_MAX_RETIRED	(DIV_ROUND_UP(0xFFFF, PAGE_SIZE) + 1)

struct sg_arena {
	struct page *page;
	unsigned int used;
	struct page *retired[SG_ARENA_MAX_RETIRED];
	unsigned int nr_retired;
};

#if !SG_SPLICE_PAGES
/*
 * One ubuf_info per call, shared by every skb of the call. Its callback runs
 * when the last skb lets go, possibly after the ioctl returned, so each one
 * pins the module. The pin is dropped from an RCU callback, and module exit
 * waits for those with rcu_barrier(): the kernel's pattern for callbacks
 * into a module.
 */
struct sg_zerocopy {
	struct ubuf_info ubuf;
	struct rcu_head rcu;
};
#endif

/* Everything one SENDGROUP_IOC_SEND needs after validation. */
struct sg_call {
	struct socket *sock;
	struct sendgroup_send_args args;
	void *recipients;		/* args.recipient_count entries */
	s32 *results;
	struct sg_payload shared;
	struct sg_arena arena;
	struct bio_vec bvec[SG_MAX_BVECS];
#if !SG_SPLICE_PAGES
	struct sg_zerocopy *zerocopy;
#endif
};

/* ---- shared pages ---------------------------------------------------- */

static void sg_payload_release(struct sg_payload *payload)
{
	unsigned int i;

	for (i = 0; i < payload->nr_pages; i++)
		put_page(payload->pages[i]);
	payload->nr_pages = 0;
}

static int sg_payload_copy(struct sg_payload *payload, u64 uptr, u32 len)
{
	const char __user *src = u64_to_user_ptr(uptr);
	unsigned int off;

	payload->len = len;
	for (off = 0; off < len; off += PAGE_SIZE) {
		unsigned int chunk = min_t(unsigned int, len - off, PAGE_SIZE);
		struct page *page = alloc_page(GFP_KERNEL_ACCOUNT);

		if (!page)
			return -ENOMEM;
		payload->pages[payload->nr_pages++] = page;
		if (copy_from_user(page_address(page), src + off, chunk))
			return -EFAULT;
	}
	sg_stat_add(shared_copies, 1);
	sg_stat_add(shared_bytes_copied, len);
	return 0;
}

/* ---- private bytes ---------------------------------------------------- */

/* Drop the pages the arena moved away from: call once the datagram is sent. */
static void sg_arena_release_retired(struct sg_arena *arena)
{
	while (arena->nr_retired)
		put_page(arena->retired[--arena->nr_retired]);
}

static void sg_arena_release(struct sg_arena *arena)
{
	sg_arena_release_retired(arena);
	if (arena->page)
		put_page(arena->page);
	arena->page = NULL;
}

/* Copy @len user bytes into the arena and describe them as bvecs at *@nr. */
static int sg_arena_copy(struct sg_arena *arena, u64 uptr, u32 len,
			 struct bio_vec *bvec, unsigned int *nr)
{
	const char __user *src = u64_to_user_ptr(uptr);
	unsigned int start = *nr;
	u32 done = 0;

	while (done < len) {
		unsigned int chunk;

		if (!arena->page || arena->used == PAGE_SIZE) {
			if (arena->page) {
				if (WARN_ON_ONCE(arena->nr_retired == SG_ARENA_MAX_RETIRED))
					return -EINVAL;
				arena->retired[arena->nr_retired++] = arena->page;
			}
			arena->page = alloc_page(GFP_KERNEL_ACCOUNT);
			if (!arena->page)
				return -ENOMEM;
			arena->used = 0;
		}
		chunk = min_t(u32, len - done, PAGE_SIZE - arena->used);
		if (copy_from_user(page_address(arena->page) + arena->used,
				   src + done, chunk)) {
			*nr = start;
			return -EFAULT;
		}
		if (WARN_ON_ONCE(*nr >= SG_MAX_BVECS))
			return -EINVAL;
		bvec_set_page(&bvec[(*nr)++], arena->page, chunk, arena->used);
		arena->used += chunk;
		done += chunk;
	}
	sg_stat_add(private_bytes_copied, len);
	return 0;
}

/* ---- zero-copy notification (kernels without UDP MSG_SPLICE_PAGES) ---- */

#if !SG_SPLICE_PAGES
static void sg_zerocopy_free_rcu(struct rcu_head *rcu)
{
	kfree(container_of(rcu, struct sg_zerocopy, rcu));
	module_put(THIS_MODULE);
}

static void sg_zerocopy_put(struct ubuf_info *ubuf)
{
	struct sg_zerocopy *zc = container_of(ubuf, struct sg_zerocopy, ubuf);

	if (refcount_dec_and_test(&ubuf->refcnt))
		call_rcu(&zc->rcu, sg_zerocopy_free_rcu);
}

static void sg_zerocopy_callback(struct sk_buff *skb, struct ubuf_info *ubuf,
				 bool zerocopy_success)
{
	sg_zerocopy_put(ubuf);
}

static struct sg_zerocopy *sg_zerocopy_alloc(void)
{
	struct sg_zerocopy *zc = kzalloc(sizeof(*zc), GFP_KERNEL);

	if (!zc)
		return NULL;
	zc->ubuf.callback = sg_zerocopy_callback;
	/* As io_uring: frags are shared pages; local delivery copies them. */
	zc->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&zc->ubuf.refcnt, 1);
	__module_get(THIS_MODULE);
	return zc;
}
#endif

/* ---- one recipient ---------------------------------------------------- */

union sg_sockaddr {
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* Fill @sa from @r; returns the address length or -EAFNOSUPPORT. */
static int sg_recipient_sockaddr(const struct sendgroup_recipient *r,
				 union sg_sockaddr *sa)
{
	memset(sa, 0, sizeof(*sa));
	switch (r->family) {
	case AF_INET:
		sa->v4.sin_family = AF_INET;
		sa->v4.sin_port = htons(r->port);
		memcpy(&sa->v4.sin_addr, r->addr, sizeof(sa->v4.sin_addr));
		return sizeof(sa->v4);
	case AF_INET6:
		sa->v6.sin6_family = AF_INET6;
		sa->v6.sin6_port = htons(r->port);
		sa->v6.sin6_flowinfo = (__force __be32)r->flowinfo;
		memcpy(&sa->v6.sin6_addr, r->addr, sizeof(sa->v6.sin6_addr));
		sa->v6.sin6_scope_id = r->scope_id;
		return sizeof(sa->v6);
	default:
		return -EAFNOSUPPORT;
	}
}

/* Send one datagram; 0 or a negative errno, exactly as sendmsg() would. */
static int sg_send_one(struct sg_call *call, const struct sendgroup_recipient *r)
{
	struct msghdr msg = { .msg_flags = call->args.msg_flags };
	u64 total = (u64)r->prepend_len + call->shared.len + r->append_len;
	union sg_sockaddr sa;
	unsigned int nr = 0, i;
	int len, ret;

	len = sg_recipient_sockaddr(r, &sa);
	if (len < 0)
		return len;
	/* udp_sendmsg's own limit; checked first so nothing is copied. */
	if (total > 0xFFFF)
		return -EMSGSIZE;

	ret = sg_arena_copy(&call->arena, r->prepend, r->prepend_len, call->bvec, &nr);
	if (ret)
		return ret;
	for (i = 0; i < call->shared.nr_pages; i++) {
		unsigned int off = i * PAGE_SIZE;

		bvec_set_page(&call->bvec[nr++], call->shared.pages[i],
			      min_t(unsigned int, call->shared.len - off, PAGE_SIZE), 0);
	}
	ret = sg_arena_copy(&call->arena, r->append, r->append_len, call->bvec, &nr);
	if (ret)
		return ret;

	msg.msg_name = &sa;
	msg.msg_namelen = len;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, call->bvec, nr, total);

	if (nr <= MAX_SKB_FRAGS) {
#if SG_SPLICE_PAGES
		msg.msg_flags |= MSG_SPLICE_PAGES;
#else
		msg.msg_flags |= MSG_ZEROCOPY;
		msg.msg_ubuf = &call->zerocopy->ubuf;
#endif
	} else {
		sg_stat_add(copied_sends, 1);
	}

	ret = sock_sendmsg(call->sock, &msg);
	if (ret < 0)
		return ret == -ERESTARTSYS ? -EINTR : ret;
	return 0;
}

/* ---- SENDGROUP_IOC_SEND ----------------------------------------------- */

static int sg_check_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (sock->type != SOCK_DGRAM || !sk ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6) ||
	    sk->sk_protocol != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	/*
	 * A corked socket (UDP_CORK, or a pending MSG_MORE datagram) would
	 * splice every recipient's bytes into one datagram.
	 */
	if (udp_test_bit(CORK, sk) || READ_ONCE(udp_sk(sk)->pending))
		return -EINVAL;
	return 0;
}

static int sg_check_args(const struct sendgroup_send_args *args)
{
	BUILD_BUG_ON(SENDGROUP_MSG_FLAGS !=
		     (MSG_DONTWAIT | MSG_DONTROUTE | MSG_CONFIRM | MSG_NOSIGNAL));

	if (args->flags || args->reserved)
		return -EINVAL;
	if (args->msg_flags & ~SENDGROUP_MSG_FLAGS)
		return -EINVAL;
	if (!args->recipient_count)
		return -EINVAL;
	if (args->recipient_count > SENDGROUP_MAX_RECIPIENTS)
		return -E2BIG;
	if (args->recipient_size < SENDGROUP_RECIPIENT_SIZE_VER0)
		return -EINVAL;
	if (args->recipient_size > SG_MAX_RECIPIENT_SIZE)
		return -E2BIG;
	if (args->shared_len > SENDGROUP_MAX_DATAGRAM)
		return -EMSGSIZE;
	return 0;
}

/* An entry's fields must make sense for its family; unknown tails must be zero. */
static int sg_check_recipient(const void *entry, u32 entry_size)
{
	const struct sendgroup_recipient *r = entry;

	if (entry_size > sizeof(*r) &&
	    memchr_inv((const u8 *)entry + sizeof(*r), 0, entry_size - sizeof(*r)))
		return -E2BIG;
	if (r->port > 0xFFFF)
		return -EINVAL;
	if (r->family == AF_INET &&
	    (memchr_inv(r->addr + 4, 0, sizeof(r->addr) - 4) || r->scope_id || r->flowinfo))
		return -EINVAL;
	return 0;
}

/* Copy the recipient array and validate every entry before sending anything. */
static int sg_copy_recipients(struct sg_call *call)
{
	const struct sendgroup_send_args *args = &call->args;
	size_t bytes = array_size(args->recipient_count, args->recipient_size);
	u32 i;
	int ret;

	call->recipients = vmemdup_user(u64_to_user_ptr(args->recipients), bytes);
	if (IS_ERR(call->recipients)) {
		ret = PTR_ERR(call->recipients);
		call->recipients = NULL;
		return ret;
	}
	for (i = 0; i < args->recipient_count; i++) {
		ret = sg_check_recipient(call->recipients + (size_t)i * args->recipient_size,
					 args->recipient_size);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The result array is written at the end; clearing it first turns a bad
 * pointer into -EFAULT before any datagram leaves.
 */
static int sg_prepare_results(struct sg_call *call)
{
	size_t bytes = array_size(call->args.recipient_count, sizeof(s32));

	if (!call->args.results)
		return 0;
	if (clear_user(u64_to_user_ptr(call->args.results), bytes))
		return -EFAULT;
	call->results = kvcalloc(call->args.recipient_count, sizeof(s32), GFP_KERNEL);
	return call->results ? 0 : -ENOMEM;
}

static int sg_send_all(struct sg_call *call)
{
	u32 count = call->args.recipient_count;
	u32 i, sent = 0, failed = 0;

	for (i = 0; i < count; i++) {
		const void *entry = call->recipients + (size_t)i * call->args.recipient_size;
		int ret;

		if (fatal_signal_pending(current))
			break;
		ret = sg_send_one(call, entry);
		sg_arena_release_retired(&call->arena);
		if (call->results)
			call->results[i] = ret;
		if (ret)
			failed++;
		else
			sent++;
		cond_resched();
	}
	/* Recipients a fatal signal kept us from attempting. */
	for (; i < count; i++)
		if (call->results)
			call->results[i] = -EINTR;

	sg_stat_add(calls, 1);
	sg_stat_add(recipients_sent, sent);
	sg_stat_add(recipient_errors, failed);

	if (call->results &&
	    copy_to_user(u64_to_user_ptr(call->args.results), call->results,
			 array_size(count, sizeof(s32))))
		return -EFAULT;
	if (!sent && fatal_signal_pending(current))
		return -EINTR;
	return sent;
}

static long sendgroup_ioctl_send(void __user *uargs)
{
	struct sg_call *call;
	u32 usize;
	long ret;
	int err;

	BUILD_BUG_ON(sizeof(struct sendgroup_send_args) != SENDGROUP_SEND_ARGS_SIZE_LATEST);
	BUILD_BUG_ON(sizeof(struct sendgroup_recipient) != SENDGROUP_RECIPIENT_SIZE_LATEST);

	if (get_user(usize, (u32 __user *)uargs))
		return -EFAULT;
	if (usize < SENDGROUP_SEND_ARGS_SIZE_VER0)
		return -EINVAL;

	call = kzalloc(sizeof(*call), GFP_KERNEL);
	if (!call)
		return -ENOMEM;

	ret = copy_struct_from_user(&call->args, sizeof(call->args), uargs, usize);
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
	ret = sg_check_socket(call->sock);
	if (ret)
		goto out_put_sock;

	ret = sg_copy_recipients(call);
	if (ret)
		goto out_free_recipients;
	ret = sg_prepare_results(call);
	if (ret)
		goto out_free_results;
	ret = sg_payload_copy(&call->shared, call->args.shared, call->args.shared_len);
	if (ret)
		goto out_release_shared;

#if !SG_SPLICE_PAGES
	call->zerocopy = sg_zerocopy_alloc();
	if (!call->zerocopy) {
		ret = -ENOMEM;
		goto out_release_shared;
	}
#endif

	ret = sg_send_all(call);

#if !SG_SPLICE_PAGES
	sg_zerocopy_put(&call->zerocopy->ubuf);
#endif
	sg_arena_release(&call->arena);
out_release_shared:
	sg_payload_release(&call->shared);
out_free_results:
	kvfree(call->results);
out_free_recipients:
	kvfree(call->recipients);
out_put_sock:
	sockfd_put(call->sock);
out_free_call:
	kfree(call);
	return ret;
}

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
		.features = SENDGROUP_FEATURE_SHARED_PAGES,
	};
	u32 usize;

	BUILD_BUG_ON(sizeof(info) != SENDGROUP_INFO_SIZE_VER0);

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

static struct attribute *sendgroup_stats_attrs[] = {
	&dev_attr_calls.attr,
	&dev_attr_recipients_sent.attr,
	&dev_attr_recipient_errors.attr,
	&dev_attr_shared_copies.attr,
	&dev_attr_shared_bytes_copied.attr,
	&dev_attr_private_bytes_copied.attr,
	&dev_attr_copied_sends.attr,
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
	/* The device grants nothing: every datagram passes sendmsg's checks. */
	.mode = 0666,
	.fops = &sendgroup_fops,
	.groups = sendgroup_groups,
};

static int __init sendgroup_init(void)
{
	return misc_register(&sendgroup_misc);
}

static void __exit sendgroup_exit(void)
{
	misc_deregister(&sendgroup_misc);
	/* Let queued zero-copy RCU callbacks finish before our text goes away. */
	rcu_barrier();
}

module_init(sendgroup_init);
module_exit(sendgroup_exit);

MODULE_DESCRIPTION("Group unicast: one shared UDP payload to many receivers per call");
MODULE_AUTHOR("GroupUnicast developers");
MODULE_LICENSE("GPL");
