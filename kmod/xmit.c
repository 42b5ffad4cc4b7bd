// SPDX-License-Identifier: GPL-2.0
/*
 * The direct transmit path: a UDP datagram built here and handed to the IP
 * layer, with the route cached per destination.
 *
 * udp_sendmsg() looks up a route for every datagram to an unconnected
 * destination and builds the skb through ip_append_data(). A group send
 * repeats the same destinations call after call, so each member keeps its
 * route like a connected UDP socket keeps sk_dst_cache: the dst plus the
 * source address the lookup chose, revalidated before each use with the
 * dst's own check (IPv4: the routing generation; IPv6: the fib6 serial
 * number cookie), and looked up again when the socket state the lookup
 * depended on (bound device, mark, TOS/traffic class, source) changed.
 *
 * The datagram is one skb charged to the socket's send buffer
 * (sock_alloc_send_pskb(): -EAGAIN with MSG_DONTWAIT, blocking otherwise,
 * as ip_append_data()): headers and prepend bytes in its linear part, the
 * shared payload pages and the append bytes as page frags, UDP checksum
 * CHECKSUM_PARTIAL (completed by the device or by validate_xmit_skb()).
 * It leaves through ip_build_and_send_pkt() / ip6_xmit(), so netfilter,
 * cgroup skb egress programs, qdiscs and neighbour resolution apply as for
 * udp_sendmsg(), and TTL/hop limit, TOS/traffic class, SO_MARK, SO_PRIORITY
 * and DF come from the socket the same way.
 *
 * The LSM's socket_sendmsg hook is asked about every datagram, with its
 * destination (sg_lsm_permits(): security_socket_sendmsg() is not exported
 * to modules), and security_sk_classify_flow() labels each route lookup as
 * in udp_sendmsg(). What differs from sock_sendmsg(): an IPv4 datagram with
 * DF has IP id 0 (as udp_sendmsg() on an unconnected socket);
 * ip_build_and_send_pkt() sets DF on datagrams of at most 576 bytes even
 * under IP_PMTUDISC_DONT.
 *
 * Everything else takes sock_sendmsg() (sg_xmit() returns SG_XMIT_FALLBACK):
 * a socket not bound yet (sendmsg autobinds it), with IP options or IPv6
 * sticky options, UDP_SEGMENT, SO_NO_CHECK, TX timestamping or SO_TXTIME;
 * a cgroup BPF UDP sendmsg program attached anywhere (it may rewrite the
 * address per datagram); a destination of the other family, multicast,
 * broadcast, unspecified, port 0, or IPv6 with a flow label on a socket
 * with IPV6_FLOWINFO_SEND; an IPsec (xfrm) route; a datagram larger than
 * the route's MTU or the socket's IPV6_MTU (the sendmsg path fragments or
 * fails it as configured);
 * more page frags than an skb holds.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bpf-cgroup.h>
#include <linux/module.h>
#include <linux/net_tstamp.h>
#include <linux/security.h>
#include <linux/udp.h>
#include <net/dst.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ip6_checksum.h>
#include <net/ip6_fib.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/route.h>
#include <net/sock.h>
#include <net/udp.h>

#include "sg_internal.h"

static bool fast_path = true;
module_param(fast_path, bool, 0644);
MODULE_PARM_DESC(fast_path,
		 "Build datagrams in the module with per-member cached routes (default on); 0 sends every datagram through sock_sendmsg()");

bool sg_xmit_enabled(void)
{
	return READ_ONCE(fast_path);
}

/* ---- socket state, across kernel versions ------------------------------ */

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#define sg_recverr4(sk)		inet_test_bit(RECVERR, sk)
#define sg_recverr6(sk)		inet6_test_bit(RECVERR6, sk)
#define sg_sndflow(sk)		inet6_test_bit(SNDFLOW, sk)
#else
#define sg_recverr4(sk)		(inet_sk(sk)->recverr)
#define sg_recverr6(sk)		(inet6_sk(sk)->recverr)
#define sg_sndflow(sk)		(inet6_sk(sk)->sndflow)
#endif

/* The TOS bits a route lookup uses, as udp_sendmsg()'s get_rttos(). */
#ifdef IPTOS_RT_MASK
#define SG_RT_TOS_MASK		IPTOS_RT_MASK
#else
#define SG_RT_TOS_MASK		INET_DSCP_MASK
#endif

/* ---- route cache ------------------------------------------------------- */

void sg_route_init(struct sg_route *route)
{
	memset(route, 0, sizeof(*route));
	spin_lock_init(&route->lock);
}

void sg_route_release(struct sg_route *route)
{
	if (route->dst) {
		dst_release(route->dst);
		sg_stat_add(routes_cached, -1);
	}
	route->dst = NULL;
}

/*
 * The cached dst with a reference for the caller, if it is still valid for
 * @key; NULL otherwise. @saddr receives the source address it was found with.
 */
static struct dst_entry *sg_route_get(struct sg_route *route, const struct sg_flow_key *key,
				      union sg_inaddr *saddr)
{
	struct dst_entry *dst;

	spin_lock(&route->lock);
	dst = route->dst;
	if (dst && (memcmp(&route->key, key, sizeof(*key)) ||
		    (dst->obsolete && !dst->ops->check(dst, route->cookie)))) {
		/* Stale: drop it here, the caller looks up again. */
		route->dst = NULL;
		spin_unlock(&route->lock);
		dst_release(dst);
		sg_stat_add(routes_cached, -1);
		return NULL;
	}
	if (dst) {
		dst_hold(dst);
		*saddr = route->saddr;
	}
	spin_unlock(&route->lock);
	return dst;
}

/* Cache @dst (the caller keeps its own reference). */
static void sg_route_set(struct sg_route *route, const struct sg_flow_key *key,
			 struct dst_entry *dst, u32 cookie, const union sg_inaddr *saddr)
{
	struct dst_entry *old;

	dst_hold(dst);
	spin_lock(&route->lock);
	old = route->dst;
	route->dst = dst;
	route->cookie = cookie;
	route->key = *key;
	route->saddr = *saddr;
	spin_unlock(&route->lock);
	if (old)
		dst_release(old);
	else
		sg_stat_add(routes_cached, 1);
	sg_stat_add(route_lookups, 1);
}

/* ---- per-call checks ----------------------------------------------------- */

/* Whether datagrams on @sock may take the direct path in this call. */
bool sg_xmit_usable(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sg_xmit_enabled())
		return false;
	if (!inet_sk(sk)->inet_num)
		return false;	/* sendmsg autobinds it first */
	if (READ_ONCE(udp_sk(sk)->gso_size) || sk->sk_no_check_tx ||
	    (READ_ONCE(sk->sk_tsflags) & SOF_TIMESTAMPING_TX_RECORD_MASK) ||
	    sock_flag(sk, SOCK_TXTIME))
		return false;
	if (sk->sk_family == AF_INET)
		return !rcu_access_pointer(inet_sk(sk)->inet_opt) &&
		       !cgroup_bpf_enabled(CGROUP_UDP4_SENDMSG);
	return !rcu_access_pointer(inet6_sk(sk)->opt) && !udp_get_no_check6_tx(sk) &&
	       !cgroup_bpf_enabled(CGROUP_UDP6_SENDMSG);
}

/* ---- building the datagram --------------------------------------------- */

/*
 * An skb charged to @sk with room for the link, network and UDP headers and
 * the prepend bytes in its linear part; the UDP header is in place.
 */
static struct sk_buff *sg_xmit_alloc(struct sg_sender *sender, struct dst_entry *dst,
				     unsigned int nethdr, const struct sg_bytes *prepend,
				     int *err)
{
	struct sock *sk = sender->sock->sk;
	unsigned int headroom = LL_RESERVED_SPACE(dst->dev) + nethdr;
	struct sk_buff *skb;
	void *dst_bytes;

	skb = sock_alloc_send_pskb(sk, headroom + sizeof(struct udphdr) + prepend->len, 0,
				   sender->msg_flags & MSG_DONTWAIT, err, 0);
	if (!skb)
		return NULL;
	skb_reserve(skb, headroom);
	skb_reset_transport_header(skb);
	skb_put(skb, sizeof(struct udphdr));
	if (prepend->len) {
		dst_bytes = skb_put(skb, prepend->len);
		if (prepend->kernel) {
			memcpy(dst_bytes, prepend->kernel, prepend->len);
		} else if (copy_from_user(dst_bytes, u64_to_user_ptr(prepend->user),
					  prepend->len)) {
			kfree_skb(skb);
			*err = -EFAULT;
			return NULL;
		}
		sg_stat_add(private_bytes_copied, prepend->len);
	}
	return skb;
}

/*
 * Attach the shared pages and the append bytes (copied into the arena) as
 * page frags. Both are written once and never again, but other datagrams
 * reference the same pages, so the skb says its frags are shared: whoever
 * wants to write to them (checksum fix-ups, in-place IPsec) copies first.
 */
static int sg_xmit_attach(struct sg_sender *sender, struct sk_buff *skb,
			  const struct sg_payload *shared, const struct sg_bytes *append)
{
	unsigned int nr = 0, i;
	u32 bytes = shared->len + append->len;
	int ret;

	sg_payload_bvecs(shared, sender->bvec, &nr);
	ret = sg_arena_copy(&sender->arena, append, sender->bvec, &nr);
	if (ret)
		return ret;
	for (i = 0; i < nr; i++) {
		get_page(sender->bvec[i].bv_page);
		skb_fill_page_desc(skb, i, sender->bvec[i].bv_page, sender->bvec[i].bv_offset,
				   sender->bvec[i].bv_len);
	}
	if (nr)
		skb_shinfo(skb)->flags |= SKBFL_SHARED_FRAG;
	skb->len += bytes;
	skb->data_len += bytes;
	skb->truesize += bytes;
	refcount_add(bytes, &skb->sk->sk_wmem_alloc);
	return 0;
}

static void sg_udp_header(struct sk_buff *skb, __be16 sport, __be16 dport)
{
	struct udphdr *uh = udp_hdr(skb);

	uh->source = sport;
	uh->dest = dport;
	uh->len = htons(skb->len);
	uh->check = 0;
}

/*
 * The MTU a datagram must fit to leave without fragmentation; on IPv6 also
 * the socket's IPV6_MTU, which ip6_append_data() fragments at.
 */
static unsigned int sg_path_mtu(const struct sock *sk, const struct dst_entry *dst)
{
	unsigned int mtu = min_t(unsigned int, dst_mtu(dst), READ_ONCE(dst->dev->mtu));

	if (sk->sk_family == AF_INET6) {
		u32 frag_size = READ_ONCE(inet6_sk(sk)->frag_size);

		if (frag_size && frag_size < mtu)
			mtu = frag_size;
	}
	return mtu;
}

/*
 * The datagram to @dst for an IP header of @nhlen bytes: prepend in the
 * linear part, the shared payload and append as frags, the UDP header pushed
 * (checksum left to the caller). Any result but 0 has released @dst:
 * SG_XMIT_FALLBACK when the datagram exceeds the path MTU or the frags an skb
 * holds, else an errno.
 */
static int sg_xmit_build(struct sg_sender *sender, struct dst_entry *dst, unsigned int nhlen,
			 __be16 dport, const struct sg_bytes *prepend,
			 const struct sg_payload *shared, const struct sg_bytes *append,
			 struct sk_buff **skbp)
{
	u32 ulen = sizeof(struct udphdr) + prepend->len + shared->len + append->len;
	struct sk_buff *skb;
	int err;

	/*
	 * Decided before anything is copied: a datagram that falls back is
	 * built again by the sendmsg path, from the start.
	 */
	if (nhlen + ulen > sg_path_mtu(sender->sock->sk, dst) ||
	    shared->nr_pages + sg_arena_bvecs(&sender->arena, append->len) > MAX_SKB_FRAGS) {
		err = SG_XMIT_FALLBACK;
		goto out_release_dst;
	}
	skb = sg_xmit_alloc(sender, dst, nhlen, prepend, &err);
	if (!skb)
		goto out_release_dst;
	err = sg_xmit_attach(sender, skb, shared, append);
	if (err)
		goto out_free_skb;
	sg_udp_header(skb, inet_sk(sender->sock->sk)->inet_sport, dport);
	*skbp = skb;
	return 0;

out_free_skb:
	kfree_skb(skb);
out_release_dst:
	dst_release(dst);
	return err;
}

/*
 * The IP layer's answer @err for one datagram, counted and reported as
 * udp_send_skb() and udp_v6_send_skb() do: a full qdisc (-ENOBUFS) is not
 * an error unless IP_RECVERR / IPV6_RECVERR is set.
 */
static int sg_xmit_result(struct sock *sk, int err)
{
	struct net *net = sock_net(sk);
	bool v6 = sk->sk_family == AF_INET6;
	int udp_mib = UDP_MIB_OUTDATAGRAMS;

	if (err > 0)
		err = net_xmit_errno(err);
	if (err) {
		if (v6)
			IP6_INC_STATS(net, NULL, IPSTATS_MIB_OUTDISCARDS);
		else
			IP_INC_STATS(net, IPSTATS_MIB_OUTDISCARDS);
		if (err != -ENOBUFS || (v6 ? sg_recverr6(sk) : sg_recverr4(sk)))
			return err;
		udp_mib = UDP_MIB_SNDBUFERRORS;
		err = 0;
	}
	if (v6)
		UDP6_INC_STATS(net, udp_mib, 0);
	else
		UDP_INC_STATS(net, udp_mib, 0);
	return err;
}

/* ---- IPv4 --------------------------------------------------------------- */

static void sg_flow_key4(struct sock *sk, struct sg_flow_key *key, u32 msg_flags)
{
	struct inet_sock *inet = inet_sk(sk);

	memset(key, 0, sizeof(*key));
	key->oif = READ_ONCE(sk->sk_bound_dev_if) ?: READ_ONCE(inet->uc_index);
	key->mark = READ_ONCE(sk->sk_mark);
	key->tos = READ_ONCE(inet->tos);
	key->scope = (sock_flag(sk, SOCK_LOCALROUTE) || (msg_flags & MSG_DONTROUTE)) ?
		     RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	key->flow_flags = inet_sk_flowi_flags(sk);
	key->saddr.v4 = READ_ONCE(inet->inet_saddr);
}

static struct dst_entry *sg_route_lookup4(struct sock *sk, const struct sg_flow_key *key,
					  __be32 daddr, __be16 dport, union sg_inaddr *saddr)
{
	struct net *net = sock_net(sk);
	struct flowi4 fl4;
	struct rtable *rt;

	flowi4_init_output(&fl4, key->oif, key->mark, key->tos & SG_RT_TOS_MASK, key->scope,
			   sk->sk_protocol, key->flow_flags, daddr, key->saddr.v4, dport,
			   inet_sk(sk)->inet_sport, sk->sk_uid);
	security_sk_classify_flow(sk, flowi4_to_flowi_common(&fl4));
	rt = ip_route_output_flow(net, &fl4, sk);
	if (IS_ERR(rt)) {
		if (PTR_ERR(rt) == -ENETUNREACH)
			IP_INC_STATS(net, IPSTATS_MIB_OUTNOROUTES);
		return ERR_CAST(rt);
	}
	memset(saddr, 0, sizeof(*saddr));
	saddr->v4 = fl4.saddr;
	return &rt->dst;
}

static int sg_xmit4(struct sg_sender *sender, struct sg_route *route,
		    const struct sockaddr_in *to, const struct sg_bytes *prepend,
		    const struct sg_payload *shared, const struct sg_bytes *append)
{
	struct sock *sk = sender->sock->sk;
	__be32 daddr = to->sin_addr.s_addr;
	struct sg_flow_key key;
	union sg_inaddr saddr;
	struct dst_entry *dst;
	struct sk_buff *skb;
	int err;

	if (!to->sin_port || !daddr || ipv4_is_multicast(daddr) || ipv4_is_lbcast(daddr))
		return SG_XMIT_FALLBACK;

	sg_flow_key4(sk, &key, sender->msg_flags);
	dst = sg_route_get(route, &key, &saddr);
	if (!dst) {
		dst = sg_route_lookup4(sk, &key, daddr, to->sin_port, &saddr);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		if ((container_of(dst, struct rtable, dst)->rt_flags & RTCF_BROADCAST) ||
		    dst_xfrm(dst)) {
			dst_release(dst);
			return SG_XMIT_FALLBACK;
		}
		sg_route_set(route, &key, dst, 0, &saddr);
	}
	err = sg_xmit_build(sender, dst, sizeof(struct iphdr), to->sin_port, prepend, shared,
			    append, &skb);
	if (err)
		return err;
	udp_set_csum(false, skb, saddr.v4, daddr, skb->len);

	if (sender->msg_flags & MSG_CONFIRM)
		dst_confirm_neigh(dst, &daddr);
	skb_dst_set(skb, dst);
	err = ip_build_and_send_pkt(skb, sk, saddr.v4, daddr, NULL, READ_ONCE(inet_sk(sk)->tos));
	return sg_xmit_result(sk, err);
}

/* ---- IPv6 --------------------------------------------------------------- */

static void sg_flow_key6(struct sock *sk, struct sg_flow_key *key, const struct sockaddr_in6 *to)
{
	struct ipv6_pinfo *np = inet6_sk(sk);

	memset(key, 0, sizeof(*key));
	if (to->sin6_scope_id && __ipv6_addr_needs_scope_id(__ipv6_addr_type(&to->sin6_addr)))
		key->oif = to->sin6_scope_id;
	if (!key->oif)
		key->oif = READ_ONCE(sk->sk_bound_dev_if);
	if (!key->oif)
		key->oif = READ_ONCE(np->sticky_pktinfo.ipi6_ifindex);
	if (!key->oif)
		key->oif = READ_ONCE(np->ucast_oif);
	key->mark = READ_ONCE(sk->sk_mark);
	key->tos = READ_ONCE(np->tclass);
	key->saddr.v6 = np->saddr;
}

static void sg_flow6(struct sock *sk, struct flowi6 *fl6, const struct sg_flow_key *key,
		     const struct in6_addr *daddr, __be16 dport)
{
	memset(fl6, 0, sizeof(*fl6));
	fl6->flowi6_oif = key->oif;
	fl6->flowi6_mark = key->mark;
	fl6->flowi6_uid = sk->sk_uid;
	fl6->flowi6_proto = sk->sk_protocol;
	fl6->daddr = *daddr;
	fl6->saddr = key->saddr.v6;
	fl6->fl6_dport = dport;
	fl6->fl6_sport = inet_sk(sk)->inet_sport;
	fl6->flowlabel = ip6_make_flowinfo(key->tos, 0);
}

static int sg_xmit6(struct sg_sender *sender, struct sg_route *route,
		    const struct sockaddr_in6 *to, const struct sg_bytes *prepend,
		    const struct sg_payload *shared, const struct sg_bytes *append)
{
	struct sock *sk = sender->sock->sk;
	struct net *net = sock_net(sk);
	const struct in6_addr *daddr = &to->sin6_addr;
	struct sg_flow_key key;
	union sg_inaddr saddr;
	struct dst_entry *dst;
	struct sk_buff *skb;
	struct flowi6 fl6;
	int err;

	if (!to->sin6_port || ipv6_addr_any(daddr) || ipv6_addr_is_multicast(daddr) ||
	    ipv6_addr_v4mapped(daddr) ||
	    ((to->sin6_flowinfo & IPV6_FLOWLABEL_MASK) && sg_sndflow(sk)))
		return SG_XMIT_FALLBACK;

	sg_flow_key6(sk, &key, to);
	sg_flow6(sk, &fl6, &key, daddr, to->sin6_port);
	dst = sg_route_get(route, &key, &saddr);
	if (dst) {
		fl6.saddr = saddr.v6;
	} else {
		security_sk_classify_flow(sk, flowi6_to_flowi_common(&fl6));
		dst = ip6_dst_lookup_flow(net, sk, &fl6, NULL);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		if (dst_xfrm(dst)) {
			dst_release(dst);
			return SG_XMIT_FALLBACK;
		}
		memset(&saddr, 0, sizeof(saddr));
		saddr.v6 = fl6.saddr;
		sg_route_set(route, &key, dst,
			     rt6_get_cookie(container_of(dst, struct rt6_info, dst)), &saddr);
	}
	err = sg_xmit_build(sender, dst, sizeof(struct ipv6hdr), to->sin6_port, prepend, shared,
			    append, &skb);
	if (err)
		return err;
	udp6_set_csum(false, skb, &fl6.saddr, daddr, skb->len);

	if (sender->msg_flags & MSG_CONFIRM)
		dst_confirm_neigh(dst, daddr);
	skb_dst_set(skb, dst);
	err = ip6_xmit(sk, skb, &fl6, READ_ONCE(sk->sk_mark), NULL, key.tos,
		       READ_ONCE(sk->sk_priority));
	return sg_xmit_result(sk, err);
}

/*
 * Send one datagram on the direct path: 0 or a negative errno as
 * sock_sendmsg() would return, or SG_XMIT_FALLBACK when this datagram must
 * take sock_sendmsg() (nothing was sent or charged then). @route caches the
 * destination's route across calls; NULL looks it up for this datagram only.
 */
int sg_xmit(struct sg_sender *sender, struct sg_route *route, const union sg_sockaddr *addr,
	    int addrlen, const struct sg_bytes *prepend, const struct sg_payload *shared,
	    const struct sg_bytes *append)
{
	int family = sender->sock->sk->sk_family;
	struct sg_route once;
	int ret;

	if (addr->v4.sin_family != family)
		return SG_XMIT_FALLBACK;
	/*
	 * A static key, so testing it per datagram costs nothing: a cgroup
	 * sendmsg program attached during a long call applies to the rest of
	 * it (sg_xmit_usable() only decides where the call starts).
	 */
	if (family == AF_INET ? cgroup_bpf_enabled(CGROUP_UDP4_SENDMSG) :
				cgroup_bpf_enabled(CGROUP_UDP6_SENDMSG))
		return SG_XMIT_FALLBACK;
	ret = sg_lsm_permits(sender->sock, addr, addrlen);
	if (ret)
		return ret;
	if (!route) {
		sg_route_init(&once);
		route = &once;
	}
	if (family == AF_INET)
		ret = sg_xmit4(sender, route, &addr->v4, prepend, shared, append);
	else
		ret = sg_xmit6(sender, route, &addr->v6, prepend, shared, append);
	if (route == &once)
		sg_route_release(&once);
	if (ret != SG_XMIT_FALLBACK)
		sg_stat_add(direct_sends, 1);
	return ret;
}
