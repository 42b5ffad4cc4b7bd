// SPDX-License-Identifier: GPL-2.0
/*
 * The datagram sender, and SENDGROUP_IOC_SEND (one shared payload to a
 * recipient list given with each call).
 *
 * The shared payload is copied from user space once per call into pages;
 * every receiver gets one datagram, built by the socket's own sendmsg path,
 * whose frags reference those pages. Per-receiver prepend and append bytes
 * are copied into pages of a per-call arena and referenced the same way.
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
 * A datagram that would need more frags than an skb may hold (MAX_SKB_FRAGS,
 * or the lower net.core.max_skb_frags on kernels that splice) is sent through
 * the copying path instead and counted in copied_sends.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <linux/udp.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "sg_internal.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
#include <net/hotdata.h>
#endif

/* Larger entries are refused: nothing legitimate needs a page per recipient. */
#define SG_MAX_RECIPIENT_SIZE	PAGE_SIZE

/* ---- page pool ------------------------------------------------------- */

void sg_pool_init(struct sg_page_pool *pool)
{
	spin_lock_init(&pool->lock);
	pool->nr = 0;
}

void sg_pool_release(struct sg_page_pool *pool)
{
	while (pool->nr)
		put_page(pool->pages[--pool->nr]);
}

static struct page *sg_page_get(struct sg_page_pool *pool)
{
	struct page *page = NULL;
	unsigned int i;

	if (pool) {
		spin_lock(&pool->lock);
		for (i = 0; i < pool->nr; i++) {
			if (page_ref_count(pool->pages[i]) == 1) {
				page = pool->pages[i];
				pool->pages[i] = pool->pages[--pool->nr];
				break;
			}
		}
		spin_unlock(&pool->lock);
		if (page)
			return page;
	}
	return alloc_page(SG_GFP_CALLER);
}

/* Drop the caller's reference: into the pool while it has room. */
static void sg_page_put(struct sg_page_pool *pool, struct page *page)
{
	if (pool) {
		spin_lock(&pool->lock);
		if (pool->nr < SG_POOL_PAGES) {
			pool->pages[pool->nr++] = page;
			page = NULL;
		}
		spin_unlock(&pool->lock);
	}
	if (page)
		put_page(page);
}

/* ---- shared pages ---------------------------------------------------- */

void sg_payload_release(struct sg_payload *payload)
{
	unsigned int i;

	for (i = 0; i < payload->nr_pages; i++)
		sg_page_put(payload->pool, payload->pages[i]);
	payload->nr_pages = 0;
}

int sg_payload_copy(struct sg_payload *payload, struct sg_page_pool *pool, u64 uptr, u32 len)
{
	const char __user *src = u64_to_user_ptr(uptr);
	unsigned int off;

	payload->pool = pool;
	payload->len = len;
	for (off = 0; off < len; off += PAGE_SIZE) {
		unsigned int chunk = min_t(unsigned int, len - off, PAGE_SIZE);
		struct page *page = sg_page_get(pool);

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
		sg_page_put(arena->pool, arena->retired[--arena->nr_retired]);
}

static void sg_arena_release(struct sg_arena *arena)
{
	sg_arena_release_retired(arena);
	if (arena->page)
		sg_page_put(arena->pool, arena->page);
	arena->page = NULL;
}

/* How many bvecs sg_arena_copy() would describe @len bytes with, from here. */
unsigned int sg_arena_bvecs(const struct sg_arena *arena, u32 len)
{
	u32 room = arena->page ? PAGE_SIZE - arena->used : 0;

	if (len <= room)
		return len ? 1 : 0;
	return (room ? 1 : 0) + DIV_ROUND_UP(len - room, PAGE_SIZE);
}

/*
 * Copy @bytes into the arena and describe them as bvecs at *@nr.
 *
 * The arena's bounds hold because every datagram releases its retired pages
 * once sent (sg_send_datagram()) and carries at most 0xFFFF private bytes:
 * those fill at most 16 pages (SG_ARENA_MAX_RETIRED is 17) and need at most
 * 17 bvecs each for prepend and append beside 16 shared pages
 * (SG_MAX_BVECS is 51). The checks below are therefore never true; they
 * stay as plain errors (args.arena_edges drives the largest cases).
 */
int sg_arena_copy(struct sg_arena *arena, const struct sg_bytes *bytes,
		  struct bio_vec *bvec, unsigned int *nr)
{
	const char __user *src = u64_to_user_ptr(bytes->user);
	unsigned int start = *nr;
	u32 done = 0;

	while (done < bytes->len) {
		void *dst;
		u32 chunk;

		if (!arena->page || arena->used == PAGE_SIZE) {
			if (arena->page) {
				if (arena->nr_retired == SG_ARENA_MAX_RETIRED)
					return -EMSGSIZE;
				arena->retired[arena->nr_retired++] = arena->page;
			}
			arena->page = sg_page_get(arena->pool);
			if (!arena->page)
				return -ENOMEM;
			arena->used = 0;
		}
		if (*nr >= SG_MAX_BVECS)
			return -EMSGSIZE;
		chunk = min_t(u32, bytes->len - done, PAGE_SIZE - arena->used);
		dst = page_address(arena->page) + arena->used;
		if (bytes->kernel) {
			memcpy(dst, bytes->kernel + done, chunk);
		} else if (copy_from_user(dst, src + done, chunk)) {
			*nr = start;
			return -EFAULT;
		}
		bvec_set_page(&bvec[(*nr)++], arena->page, chunk, arena->used);
		arena->used += chunk;
		done += chunk;
	}
	sg_stat_add(private_bytes_copied, bytes->len);
	return 0;
}

/* ---- zero-copy notification (kernels without UDP MSG_SPLICE_PAGES) ---- */

#if !SG_SPLICE_PAGES
/*
 * One ubuf_info per sender, shared by every skb it builds. Its callback runs
 * when the last skb lets go, possibly after the ioctl returned, so each one
 * pins the module. The pin is dropped from an RCU callback, and module exit
 * waits for those with rcu_barrier(): the kernel's pattern for callbacks
 * into a module.
 */
struct sg_zerocopy {
	struct ubuf_info ubuf;
	struct rcu_head rcu;
};

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

static struct ubuf_info *sg_zerocopy_alloc(void)
{
	struct sg_zerocopy *zc = kzalloc(sizeof(*zc), GFP_KERNEL_ACCOUNT);

	if (!zc)
		return NULL;
	zc->ubuf.callback = sg_zerocopy_callback;
	/* As io_uring: frags are shared pages; local delivery copies them. */
	zc->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&zc->ubuf.refcnt, 1);
	__module_get(THIS_MODULE);
	return &zc->ubuf;
}
#endif

/* ---- one datagram ----------------------------------------------------- */

/* Page fragments one datagram may reference before the stack refuses it. */
static unsigned int sg_max_frags(void)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	/* skb_splice_from_iter() stops at the sysctl, not at MAX_SKB_FRAGS. */
	return min_t(unsigned int, READ_ONCE(net_hotdata.sysctl_max_skb_frags), MAX_SKB_FRAGS);
#elif SG_SPLICE_PAGES
	return min_t(unsigned int, READ_ONCE(sysctl_max_skb_frags), MAX_SKB_FRAGS);
#else
	return MAX_SKB_FRAGS;	/* __zerocopy_sg_from_iter()'s limit */
#endif
}

int sg_sender_init(struct sg_sender *sender, struct socket *sock, u32 msg_flags,
		   struct sg_page_pool *pool)
{
	memset(sender, 0, offsetof(struct sg_sender, bvec));
	sender->sock = sock;
	sender->arena.pool = pool;
	sender->msg_flags = msg_flags;
	sender->direct = sg_xmit_usable(sock);
	return 0;
}

void sg_sender_release(struct sg_sender *sender)
{
#if !SG_SPLICE_PAGES
	if (sender->zerocopy)
		sg_zerocopy_put(sender->zerocopy);
	sender->zerocopy = NULL;
#endif
	sg_arena_release(&sender->arena);
}

/* Fill @sa from @r; returns the address length or -EAFNOSUPPORT. */
int sg_recipient_sockaddr(const struct sendgroup_recipient *r, union sg_sockaddr *sa)
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

/*
 * Send prepend + shared + append to @addr; 0 or a negative errno, exactly as
 * sendmsg() would. @addrlen < 0 is the errno of an unusable address. @route
 * is the destination's cached route for the direct path (xmit.c), or NULL.
 */
int sg_send_datagram(struct sg_sender *sender, struct sg_route *route,
		     const union sg_sockaddr *addr, int addrlen,
		     const struct sg_bytes *prepend, const struct sg_payload *shared,
		     const struct sg_bytes *append)
{
	struct msghdr msg = { .msg_flags = sender->msg_flags };
	u64 total = (u64)prepend->len + shared->len + append->len;
	unsigned int nr = 0, i;
	int ret;

	if (addrlen < 0)
		return addrlen;
	/* udp_sendmsg's own limit; checked first so nothing is copied. */
	if (total > 0xFFFF)
		return -EMSGSIZE;

	if (sender->direct) {
		ret = sg_xmit(sender, route, addr, addrlen, prepend, shared, append);
		if (ret != SG_XMIT_FALLBACK)
			goto out;
		/* Nothing of this datagram is in flight: start its copy afresh. */
		sg_arena_release_retired(&sender->arena);
	}

	ret = sg_arena_copy(&sender->arena, prepend, sender->bvec, &nr);
	if (ret)
		goto out;
	for (i = 0; i < shared->nr_pages; i++)
		bvec_set_page(&sender->bvec[nr++], shared->pages[i],
			      min_t(unsigned int, shared->len - i * PAGE_SIZE, PAGE_SIZE), 0);
	ret = sg_arena_copy(&sender->arena, append, sender->bvec, &nr);
	if (ret)
		goto out;

	msg.msg_name = (void *)addr;
	msg.msg_namelen = addrlen;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, sender->bvec, nr, total);

	if (nr <= sg_max_frags()) {
#if SG_SPLICE_PAGES
		msg.msg_flags |= MSG_SPLICE_PAGES;
#else
		/* Allocated on first use: calls on the direct path never need it. */
		if (!sender->zerocopy)
			sender->zerocopy = sg_zerocopy_alloc();
		if (!sender->zerocopy) {
			ret = -ENOMEM;
			goto out;
		}
		msg.msg_flags |= MSG_ZEROCOPY;
		msg.msg_ubuf = sender->zerocopy;
#endif
	} else {
		sg_stat_add(copied_sends, 1);
	}

	ret = sock_sendmsg(sender->sock, &msg);
	if (ret > 0)
		ret = 0;
out:
	sg_arena_release_retired(&sender->arena);
	/*
	 * A signal while waiting for send-buffer space: both paths say
	 * -ERESTARTSYS, which must not reach user space. The call is not
	 * restarted (it would send everything again); the caller stops.
	 */
	if (ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK)
		ret = -EINTR;
	return ret;
}

/*
 * Whether a call stops before its next datagram: a fatal signal, or a
 * datagram that was interrupted (@ret -EINTR) by any signal.
 */
bool sg_send_interrupted(int ret)
{
	return fatal_signal_pending(current) || (ret == -EINTR && signal_pending(current));
}

/* ---- argument checks shared with groups -------------------------------- */

/*
 * vmemdup_user() charged to the caller (SG_GFP_CALLER; vmemdup_user()'s
 * GFP_USER is not): free with kvfree().
 */
void *sg_memdup_user(const void __user *src, size_t len)
{
	void *p = kvmalloc(len, SG_GFP_CALLER);

	if (!p)
		return ERR_PTR(-ENOMEM);
	if (copy_from_user(p, src, len)) {
		kvfree(p);
		return ERR_PTR(-EFAULT);
	}
	return p;
}

/* copy_struct_from_user() with the VER0 floor every command has. */
int sg_copy_args(void *dst, size_t ksize, size_t ver0, const void __user *src)
{
	u32 usize;

	if (get_user(usize, (const u32 __user *)src))
		return -EFAULT;
	if (usize < ver0)
		return -EINVAL;
	return copy_struct_from_user(dst, ksize, src, usize);
}

int sg_check_udp_socket(struct socket *sock)
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

int sg_check_msg_flags(u32 msg_flags)
{
	BUILD_BUG_ON(SENDGROUP_MSG_FLAGS !=
		     (MSG_DONTWAIT | MSG_DONTROUTE | MSG_CONFIRM | MSG_NOSIGNAL));

	return msg_flags & ~SENDGROUP_MSG_FLAGS ? -EINVAL : 0;
}

/* The fields of a recipient must make sense for its family. */
int sg_check_recipient(const struct sendgroup_recipient *r)
{
	if (r->port > 0xFFFF)
		return -EINVAL;
	if (r->family == AF_INET &&
	    (memchr_inv(r->addr + 4, 0, sizeof(r->addr) - 4) || r->scope_id || r->flowinfo))
		return -EINVAL;
	return 0;
}

/* ---- SENDGROUP_IOC_SEND ----------------------------------------------- */

/* Everything one SENDGROUP_IOC_SEND needs after validation. */
/* Recipient entries and results a call holds without allocating. */
#define SG_INLINE_RECIPIENTS	4

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
	if (args->flags || args->reserved)
		return -EINVAL;
	if (sg_check_msg_flags(args->msg_flags))
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

/* An entry larger than this kernel knows must have an all-zero tail. */
static int sg_check_entry_tail(const void *entry, u32 entry_size, size_t known)
{
	if (entry_size > known && memchr_inv(entry + known, 0, entry_size - known))
		return -E2BIG;
	return 0;
}

/* Copy the recipient array and validate every entry before sending anything. */
static int sg_copy_recipients(struct sg_call *call)
{
	const struct sendgroup_send_args *args = &call->args;
	size_t bytes = array_size(args->recipient_count, args->recipient_size);
	u32 i;
	int ret;

	if (bytes <= sizeof(call->inline_recipients)) {
		call->recipients = call->inline_recipients;
		if (copy_from_user(call->recipients, u64_to_user_ptr(args->recipients), bytes))
			return -EFAULT;
	} else {
		call->recipients = sg_memdup_user(u64_to_user_ptr(args->recipients), bytes);
	}
	if (IS_ERR(call->recipients)) {
		ret = PTR_ERR(call->recipients);
		call->recipients = NULL;
		return ret;
	}
	for (i = 0; i < args->recipient_count; i++) {
		const void *entry = call->recipients + (size_t)i * args->recipient_size;

		ret = sg_check_entry_tail(entry, args->recipient_size,
					  sizeof(struct sendgroup_recipient));
		if (!ret)
			ret = sg_check_recipient(entry);
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
	if (call->args.recipient_count <= SG_INLINE_RECIPIENTS)
		call->results = call->inline_results;
	else
		call->results = kvcalloc(call->args.recipient_count, sizeof(s32), SG_GFP_CALLER);
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
		goto out_free_recipients;
	ret = sg_prepare_results(call);
	if (ret)
		goto out_free_results;
	ret = sg_payload_copy(&call->shared, NULL, call->args.shared, call->args.shared_len);
	if (ret)
		goto out_release_shared;
	ret = sg_sender_init(&call->sender, call->sock, call->args.msg_flags, NULL);
	if (ret)
		goto out_release_sender;

	ret = sg_send_all(call);

out_release_sender:
	sg_sender_release(&call->sender);
out_release_shared:
	sg_payload_release(&call->shared);
out_free_results:
	if (call->results != call->inline_results)
		kvfree(call->results);
out_free_recipients:
	if (call->recipients != call->inline_recipients)
		kvfree(call->recipients);
out_put_sock:
	sockfd_put(call->sock);
out_free_call:
	kfree(call);
	return ret;
}
