// SPDX-License-Identifier: GPL-2.0
/*
 * Argument copying and checks shared by the one-shot send (send.c) and the
 * groups (group.c): size-versioned structs, arrays held inline or charged
 * to the caller, entry arrays, the socket, the sendmsg flags, and a
 * recipient's fields and the socket address they make.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/udp.h>
#include <net/sock.h>
#include <net/udp.h>

#include "sg_internal.h"

/* ---- copying ------------------------------------------------------------ */

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

/*
 * Copy @bytes of user memory at @uptr into @inline_buf when they fit its
 * @inline_size, else into memory charged to the caller: the copy, or an
 * ERR_PTR. Free it with sg_free_array().
 */
void *sg_copy_array(u64 uptr, size_t bytes, void *inline_buf, size_t inline_size)
{
	if (bytes > inline_size)
		return sg_memdup_user(u64_to_user_ptr(uptr), bytes);
	if (copy_from_user(inline_buf, u64_to_user_ptr(uptr), bytes))
		return ERR_PTR(-EFAULT);
	return inline_buf;
}

/*
 * A zeroed array of @count entries of @size bytes: @inline_buf (zeroed by
 * the caller) when @count is at most its @inline_count entries, else charged
 * to the caller. Free it with sg_free_array().
 */
void *sg_alloc_array(u32 count, size_t size, void *inline_buf, u32 inline_count)
{
	if (count <= inline_count)
		return inline_buf;
	return kvcalloc(count, size, SG_GFP_CALLER);
}

/* Free what sg_copy_array() or sg_alloc_array() returned (or NULL). */
void sg_free_array(void *array, void *inline_buf)
{
	if (array != inline_buf)
		kvfree(array);
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

/* ---- checks ------------------------------------------------------------- */

/*
 * An array of @count entries of @entry_size bytes, versioned by size:
 * 1..@max_count entries, each at least @size_ver0 bytes and at most a page
 * (nothing legitimate needs more per entry).
 */
int sg_check_entries(u32 count, u32 max_count, u32 entry_size, u32 size_ver0)
{
	if (!count)
		return -EINVAL;
	if (count > max_count)
		return -E2BIG;
	if (entry_size < size_ver0)
		return -EINVAL;
	if (entry_size > PAGE_SIZE)
		return -E2BIG;
	return 0;
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
