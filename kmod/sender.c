// SPDX-License-Identifier: GPL-2.0
/*
 * The datagram sender: one datagram (prepend + shared payload + append) to
 * one destination, on the direct path (xmit.c) where that can be used, else
 * through the socket's own sendmsg path, whose bvec iterator references the
 * payload pages and the arena (pages.c) instead of copying them; and the
 * LSM probe the direct path asks before each datagram.
 *
 * Each sendmsg-path datagram is one uncorked sock_sendmsg() on the caller's
 * socket, so it is indivisible with respect to other senders on that socket,
 * and routing, netfilter, cgroup-BPF, LSM and socket options apply exactly
 * as for sendmsg().
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

#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "sg_internal.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
#include <net/hotdata.h>
#endif

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

/* ---- the sender --------------------------------------------------------- */

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

/* A sender for one call on @sock; @pool (or NULL) supplies the arena's pages. */
void sg_sender_init(struct sg_sender *sender, struct socket *sock, u32 msg_flags,
		    struct sg_page_pool *pool)
{
	memset(sender, 0, offsetof(struct sg_sender, bvec));
	sender->sock = sock;
	sender->arena.pool = pool;
	sender->msg_flags = msg_flags;
	sender->direct = sg_xmit_usable(sock);
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

/* ---- one datagram ----------------------------------------------------- */

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
	unsigned int nr = 0;
	int ret;

	if (addrlen < 0)
		return addrlen;
	/* udp_sendmsg's own limit; checked first so nothing is copied. */
	if (total > 0xFFFF)
		return -EMSGSIZE;

	if (sender->direct) {
		ret = sg_xmit(sender, route, addr, addrlen, prepend, shared, append);
		if (ret != SG_XMIT_FALLBACK)
			goto out_release_retired;
		/* Nothing of this datagram is in flight: start its copy afresh. */
		sg_arena_release_retired(&sender->arena);
	}

	ret = sg_arena_copy(&sender->arena, prepend, sender->bvec, &nr);
	if (ret)
		goto out_release_retired;
	sg_payload_bvecs(shared, sender->bvec, &nr);
	ret = sg_arena_copy(&sender->arena, append, sender->bvec, &nr);
	if (ret)
		goto out_release_retired;

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
			goto out_release_retired;
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
out_release_retired:
	sg_arena_release_retired(&sender->arena);
	/*
	 * A signal while waiting for send-buffer space: both paths say
	 * -ERESTARTSYS, which must not reach user space. The call is not
	 * restarted (it would send everything again); the caller stops.
	 */
	if (ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK)
		ret = -EINTR;
	/*
	 * A blocking call waits out the socket's SO_SNDTIMEO once, not once per
	 * datagram: after a wait for send-buffer space timed out, the call's
	 * later datagrams are tried without waiting, or a call to N recipients
	 * could block N times the timeout.
	 */
	if (ret == -EAGAIN)
		sender->msg_flags |= MSG_DONTWAIT;
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

/* ---- the LSM ------------------------------------------------------------ */

/* A sendmsg() of INT_MAX bytes to @addr: -EMSGSIZE unless refused earlier. */
static int sg_probe_sendmsg(struct socket *sock, const union sg_sockaddr *addr, int addrlen,
			    bool ask_lsm)
{
	static const char unread;
	struct kvec iov = { .iov_base = (void *)&unread, .iov_len = sizeof(unread) };
	union sg_sockaddr name = *addr;	/* nothing may write to the member's copy */
	struct msghdr msg = {
		.msg_name = &name,
		.msg_namelen = addrlen,
		.msg_flags = MSG_DONTWAIT,
	};

	/* The count is what both UDP sendmsg paths check first; nothing reads the data. */
	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &iov, 1, INT_MAX);
	if (ask_lsm)
		return sock_sendmsg(sock, &msg);
	return READ_ONCE(sock->ops)->sendmsg(sock, &msg, INT_MAX);
}

/*
 * Ask the LSM's socket_sendmsg hook about one datagram of the direct path,
 * which bypasses sock_sendmsg() (security_socket_sendmsg() is not exported
 * to modules): a sock_sendmsg() to the datagram's destination with a length
 * that udp_sendmsg() and udpv6_sendmsg() refuse (-EMSGSIZE) before they
 * read, charge or send anything, so the LSM sees the socket and the
 * destination as for the real datagram. Asked for every datagram: an LSM's
 * answer may depend on the destination and change at any moment (a BPF LSM
 * map update, a policy reload) with nothing a module can watch, so no
 * verdict is kept.
 *
 * Returns 0 when allowed; the LSM's errno when it refused; SG_XMIT_FALLBACK
 * when the answer was not the LSM's: the protocol alone, asked the same
 * question without the hook, does not say -EMSGSIZE either. The datagram
 * then takes sock_sendmsg() and gets the real answer there.
 */
int sg_lsm_permits(struct socket *sock, const union sg_sockaddr *addr, int addrlen)
{
	int ret = sg_probe_sendmsg(sock, addr, addrlen, true);

	if (ret == -EMSGSIZE)
		return 0;
	if (sg_probe_sendmsg(sock, addr, addrlen, false) != -EMSGSIZE)
		return SG_XMIT_FALLBACK;
	sg_stat_add(lsm_refusals, 1);
	return ret;
}
