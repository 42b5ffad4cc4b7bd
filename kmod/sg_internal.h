/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the parts of sendgroup.ko, one concern each:
 *   main.c    the misc device: ioctl dispatch, SENDGROUP_IOC_INFO, counters
 *   send.c    SENDGROUP_IOC_SEND, the one-shot send to a recipient list
 *   group.c   kernel-resident groups: SENDGROUP_IOC_GROUP_CREATE, group fds
 *   args.c    argument copying and checks shared by send.c and group.c
 *   pages.c   payload pages: the shared payload, the arena, a group's pool
 *   sender.c  one datagram: the direct path or sock_sendmsg(); the LSM probe
 *   xmit.c    the direct path: datagrams built here, routes cached
 */
#ifndef SG_INTERNAL_H
#define SG_INTERNAL_H

#include <linux/bvec.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/net.h>
#include <linux/percpu.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/version.h>

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
 * bvec entries one datagram can need: prepend and append may each straddle
 * page boundaries of the arena; the datagram is at most 64 KiB in total.
 */
#define SG_MAX_BVECS		(3 * (SG_SHARED_PAGES + 1))
/* Pages the arena can move away from while one datagram is being built. */
#define SG_ARENA_MAX_RETIRED	(DIV_ROUND_UP(0xFFFF, PAGE_SIZE) + 1)

/*
 * Memory whose size or number the caller chooses: charged to the caller's
 * memory cgroup, and past the cgroup's limit the call fails with ENOMEM
 * instead of invoking the OOM killer.
 */
#define SG_GFP_CALLER	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

struct sendgroup_stats {
	u64 calls;
	u64 recipients_sent;
	u64 recipient_errors;
	u64 shared_copies;
	u64 shared_bytes_copied;
	u64 private_bytes_copied;
	u64 copied_sends;
	u64 group_calls;
	u64 groups_live;	/* may go negative per CPU; the sum is right */
	u64 members_live;
	u64 direct_sends;	/* datagrams built here (xmit.c), not by sendmsg */
	u64 route_lookups;	/* routes looked up by the direct path */
	u64 routes_cached;	/* dst references held by member route caches */
	u64 lsm_refusals;	/* direct-path datagrams the LSM's socket_sendmsg hook refused */
};

DECLARE_PER_CPU(struct sendgroup_stats, sendgroup_stats);

#define sg_stat_add(field, n) this_cpu_add(sendgroup_stats.field, (n))

union sg_sockaddr {
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/*
 * Pages a group keeps between its sends for payload copies and private
 * bytes, instead of allocating (and charging) fresh ones every call. A page
 * is handed out again only once its reference count is back to the pool's
 * own: no skb of an earlier send references it any more.
 */
#define SG_POOL_PAGES		16
struct sg_page_pool {
	spinlock_t lock;
	unsigned int nr;
	struct page *pages[SG_POOL_PAGES];
};

/* A shared payload, copied from user space once into pages. */
struct sg_payload {
	struct sg_page_pool *pool;	/* or NULL */
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
struct sg_arena {
	struct sg_page_pool *pool;	/* or NULL */
	struct page *page;
	unsigned int used;
	struct page *retired[SG_ARENA_MAX_RETIRED];
	unsigned int nr_retired;
};

/* Private bytes of one datagram: in user space (one-shot sends) or in the kernel (groups). */
struct sg_bytes {
	const void *kernel;	/* used when non-NULL */
	u64 user;
	u32 len;
};

union sg_inaddr {
	__be32 v4;
	struct in6_addr v6;
};

/* The socket state a route lookup depends on (zero-padded: compared whole). */
struct sg_flow_key {
	union sg_inaddr saddr;	/* bound source address, or any */
	int oif;
	u32 mark;
	u8 tos;			/* IPv4 TOS, IPv6 traffic class */
	u8 scope;
	u8 flow_flags;
};

/* A destination's cached route (xmit.c), like a connected socket's sk_dst_cache. */
struct sg_route {
	spinlock_t lock;	/* concurrent sends to the same member */
	struct dst_entry *dst;	/* one reference, or NULL */
	u32 cookie;		/* for dst->ops->check() */
	struct sg_flow_key key;	/* what @dst was looked up with */
	union sg_inaddr saddr;	/* the source address the lookup chose */
};

/* sg_xmit(): this datagram must take sock_sendmsg(). */
#define SG_XMIT_FALLBACK	1

/* Sends datagrams on one socket; one per ioctl call. */
struct sg_sender {
	struct socket *sock;
	u32 msg_flags;
	bool direct;		/* sg_xmit() may be used in this call */
	struct sg_arena arena;
	struct ubuf_info *zerocopy;	/* kernels without UDP MSG_SPLICE_PAGES */
	struct bio_vec bvec[SG_MAX_BVECS];	/* scratch: last, not initialised */
};

/* pages.c */
void sg_call_pools_init(void);
void sg_call_pools_release(void);
struct sg_page_pool *sg_call_pool(void);
void sg_pool_init(struct sg_page_pool *pool);
void sg_pool_release(struct sg_page_pool *pool);
int sg_payload_copy(struct sg_payload *payload, struct sg_page_pool *pool, u64 uptr, u32 len);
void sg_payload_release(struct sg_payload *payload);
void sg_payload_bvecs(const struct sg_payload *payload, struct bio_vec *bvec, unsigned int *nr);
int sg_arena_copy(struct sg_arena *arena, const struct sg_bytes *bytes,
		  struct bio_vec *bvec, unsigned int *nr);
unsigned int sg_arena_bvecs(const struct sg_arena *arena, u32 len);
void sg_arena_release_retired(struct sg_arena *arena);
void sg_arena_release(struct sg_arena *arena);

/* sender.c */
void sg_sender_init(struct sg_sender *sender, struct socket *sock, u32 msg_flags,
		    struct sg_page_pool *pool);
void sg_sender_release(struct sg_sender *sender);
int sg_send_datagram(struct sg_sender *sender, struct sg_route *route,
		     const union sg_sockaddr *addr, int addrlen,
		     const struct sg_bytes *prepend, const struct sg_payload *shared,
		     const struct sg_bytes *append);
bool sg_send_interrupted(int ret);
int sg_lsm_permits(struct socket *sock, const union sg_sockaddr *addr, int addrlen);

/* xmit.c */
void sg_route_init(struct sg_route *route);
void sg_route_release(struct sg_route *route);
bool sg_xmit_enabled(void);
bool sg_xmit_usable(struct socket *sock);
int sg_xmit(struct sg_sender *sender, struct sg_route *route, const union sg_sockaddr *addr,
	    int addrlen, const struct sg_bytes *prepend, const struct sg_payload *shared,
	    const struct sg_bytes *append);

/* args.c */
void *sg_memdup_user(const void __user *src, size_t len);
void *sg_copy_array(u64 uptr, size_t bytes, void *inline_buf, size_t inline_size);
void *sg_alloc_array(u32 count, size_t size, void *inline_buf, u32 inline_count);
void sg_free_array(void *array, void *inline_buf);
int sg_copy_args(void *dst, size_t ksize, size_t ver0, const void __user *src);
int sg_check_entries(u32 count, u32 max_count, u32 entry_size, u32 size_ver0);
int sg_check_udp_socket(struct socket *sock);
int sg_check_msg_flags(u32 msg_flags);
int sg_check_recipient(const struct sendgroup_recipient *r);
int sg_recipient_sockaddr(const struct sendgroup_recipient *r, union sg_sockaddr *sa);

/* The ioctls of /dev/sendgroup beside SENDGROUP_IOC_INFO. */
long sendgroup_ioctl_send(void __user *uargs);
long sendgroup_ioctl_group_create(void __user *uargs);

#endif /* SG_INTERNAL_H */
