// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * groupcast.bpf.c - the SFU data plane in the kernel.
 *
 * Two programs share the maps and the read-only config:
 *
 *   groupcast_xdp  (XDP, the interface's ingress, before any skb exists)
 *       validates SFU-port traffic and drops what must never be forwarded
 *       (malformed, fragments, spoofed origin) at the cheapest point; passes
 *       unknown SSRCs, RTCP and over-limit routes to user space; passes valid
 *       media of a registered stream on to the TC program.
 *
 *   groupcast_tc   (TC clsact ingress of the same interface)
 *       (with gc_cfg.ingress == GC_INGRESS_TC, no XDP program attached, it
 *       first judges and counts every datagram as the XDP program would)
 *       replicates: XDP cannot clone a frame, so each subscriber's copy is
 *       made by bpf_clone_redirect() in a loop inside ONE program run (a
 *       program re-entered per copy would hit the transmit recursion limit),
 *       each copy with its own destination MAC/IP/port and incrementally
 *       fixed IPv4 header and UDP checksums; the original is finally
 *       rewritten back to its origin and redirected out of the ingress
 *       device (the echo), or freed when echo is off.
 *
 * Copies and the echo come from the SFU: source address/port := the
 * address/port the sender used (the SFU's), source MAC := the egress
 * interface's MAC. A copy carries its next hop's VLAN tag (the subscriber's
 * vlan_id: the route to it goes through that VLAN device), the echo the
 * origin's. TTL/hop limit, TOS, IP ID and payload are unchanged.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "groupcast_layout.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load (rodata; pinned as "config"). */
const volatile struct gc_config gc_cfg = {
	.abi_version = GC_ABI_VERSION,
	.port = 5004,
	.echo = 1,
};

/*
 * The key of this load's XDP -> TC vouch (struct gc_xdp_meta.key): random,
 * made by the XDP program's first run, never 0 once made. Every load of the
 * object has its own, so the TC program never takes metadata written by any
 * other program (another instance's XDP program, another tool's) for its own
 * XDP program's. Not a secret from root, who can read this map; from the
 * wire, nothing can set metadata at all. Two first runs on two CPUs may both
 * make one: the later store wins, and a frame stamped with the other key is
 * verified in full by the TC program.
 */
__u64 gc_meta_key;

/*
 * Routes: SSRC -> a one-element array map holding the route, never written
 * after it is published. A route update installs a new inner map; the
 * kernel frees the replaced one only after an RCU grace period
 * (bpf_map_fd_put_ptr(need_defer)), and a program run is one RCU read-side
 * section, so a run that looked a route up walks that route's subscribers
 * to the end, whatever is replaced meanwhile. A plain hash map would not
 * do: a replaced or deleted element, preallocated or not (bpf_mem_alloc),
 * is reused by the next update at once, under the reader's feet.
 */
struct gc_route_cell {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, 1);
	/* Sizes, not types: clang's BTF for a map nested this deep names the
	 * value struct only by a forward declaration, which libbpf cannot size. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct gc_route));
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, GC_DEFAULT_MAX_ROUTES);
	__type(key, __u32);			/* SSRC, host order */
	__array(values, struct gc_route_cell);
} gc_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GC_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gc_delay_hist);
} gc_delay SEC(".maps");

/* Per-route media counters (struct gc_media_counters), keyed by SSRC like
 * gc_routes and as large: the loader creates a route's entry before it
 * publishes the route and deletes it after the route; the TC program only
 * looks it up (a route without one is replicated uncounted). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, GC_DEFAULT_MAX_ROUTES);
	__type(key, __u32);			/* SSRC, host order */
	__type(value, struct gc_media_counters);
} gc_media SEC(".maps");

/* The attached interface's own addresses (the loader's): media is replicated
 * only when sent to one of them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GC_MAX_LOCAL_ADDRS);
	__type(key, struct gc_local_addr);
	__type(value, __u8);
} gc_local SEC(".maps");

/* Owned by the loader (what it attached, for detach and status). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gc_loader_state);
} gc_state SEC(".maps");

static __always_inline void gc_record_delay(__u64 rx_ns)
{
	__u32 zero = 0, i;
	struct gc_delay_hist *h = bpf_map_lookup_elem(&gc_delay, &zero);
	__u64 ns = bpf_ktime_get_ns() - rx_ns;

	if (!h)
		return;
	h->count++;
	h->sum += ns;
	if (ns > h->max)
		h->max = ns;
	i = gc_delay_bucket(ns);
	if (i < GC_DELAY_BUCKETS)
		h->buckets[i]++;
}

static __always_inline void gc_count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&gc_stats, &stat);

	if (v)
		*v += n;
}

/* The registered origin sent this packet (address, port and VLAN). */
static __always_inline int gc_from_origin(const struct gc_route *r, const struct gc_pkt *pkt)
{
	const __u32 *o = (const __u32 *)r->origin_addr;

	if (r->family != pkt->family || r->origin_port != pkt->sport ||
	    r->origin_vlan != pkt->vlan_id)
		return 0;
	if (o[0] != pkt->saddr[0])
		return 0;
	if (pkt->family == GC_FAMILY_IPV6 &&
	    (o[1] != pkt->saddr[1] || o[2] != pkt->saddr[2] || o[3] != pkt->saddr[3]))
		return 0;
	return 1;
}

/* Sent to this host: to the interface's MAC (PACKET_HOST), to one of its
 * addresses on the VLAN it came on, from a unicast source. Anything else is
 * not the SFU's to replicate: the stack drops it (another host's frame, a
 * martian) or delivers it to the SFU's socket (a broadcast), as for the
 * socket path. */
static __always_inline int gc_for_this_host(const struct gc_pkt *pkt)
{
	struct gc_local_addr key = { .family = pkt->family, .vlan_id = pkt->vlan_id };
	int i;

	for (i = 0; i < 6; i++)
		if (pkt->eth_dst[i] != gc_cfg.mac[i])
			return 0;
	if (gc_addr_martian(pkt->family, pkt->saddr) || gc_addr_martian(pkt->family, pkt->daddr))
		return 0;
	__builtin_memcpy(key.addr, pkt->daddr, 16);
	return bpf_map_lookup_elem(&gc_local, &key) != NULL;
}

/* A tagged frame's VLAN has a VLAN device on this interface (the loader's
 * GC_FAMILY_VLAN entries); VLAN id 0 is a priority tag, the untagged LAN.
 * 802.1ad service tags are never served. */
static __always_inline int gc_vlan_served(const struct gc_pkt *pkt)
{
	struct gc_local_addr key = { .family = GC_FAMILY_VLAN, .vlan_id = pkt->vlan_id };

	if (pkt->vlan != GC_VLAN_TAG_8021Q)
		return 0;
	return pkt->vlan_id == 0 || bpf_map_lookup_elem(&gc_local, &key) != NULL;
}

/* Shared by both programs: classify and count everything but success.
 * @ctx/@ctx_kind: the program's context (enum gc_ctx_kind); @oob_tag/@oob_vid:
 * the VLAN tag the skb carries out of band (TC: the stack took it off before
 * the hook), GC_VLAN_TAG_* or 0. @vouch (TC): the XDP program's vouch for
 * this frame (gc_read_vouch()), or NULL; pkt->vouch_* set from it. */
static __always_inline int gc_classify(void *ctx, int ctx_kind, void *data, void *data_end,
				       struct gc_pkt *pkt, const struct gc_route **route, int count,
				       int oob_tag, __u16 oob_vid, const struct gc_xdp_meta *vouch)
{
	const struct gc_route *r;
	__u32 zero = 0;
	void *cell;
	int ret, vouched = 0;

	ret = gc_parse(data, data_end, bpf_htons(gc_cfg.port), pkt, ctx, ctx_kind);
	if (ret == GC_PARSE_OTHER)
		return ret;
	if (vouch && ret == GC_PARSE_RTP) {
		/* The checksum was taken on the vouch if length and field
		 * matched: the rest of the frame must match too, or the
		 * stack verifies it. */
		if (pkt->ssrc != vouch->ssrc) {
			pkt->reason = GC_STAT_PASS_UDP_CSUM;
			return GC_PARSE_PASS;
		}
		vouched = pkt->udp_len == vouch->udp_len && pkt->udp_check == vouch->udp_check;
	}
	if (pkt->to_port) {
		if (oob_tag) {
			if (pkt->vlan) {
				/* Two tags (QinQ): no VLAN device of ours takes them. */
				pkt->vlan = GC_VLAN_TAG_8021AD;
			} else {
				pkt->vlan = oob_tag;
				pkt->vlan_id = oob_vid;
			}
		}
		/* A VLAN without a device here: the stack would drop it too,
		 * whatever is inside; never replicated onto the wire. */
		if (pkt->vlan && !gc_vlan_served(pkt)) {
			pkt->drop = GC_DROP_VLAN;
			ret = GC_PARSE_DROP;
		} else if (!vouched && !gc_for_this_host(pkt)) {
			/* (Vouched: the XDP program found it so on this frame.) */
			/* Not ours to judge: whatever the parser found further
			 * in, the stack decides, as for the socket path. */
			pkt->reason = GC_STAT_PASS_NOT_LOCAL;
			ret = GC_PARSE_PASS;
		}
	}
	/* Every drop is counted in rx too, also those made before the UDP
	 * port could be read (a malformed IP header), so drops <= rx. */
	if (count && (pkt->to_port || ret == GC_PARSE_DROP))
		gc_count(GC_STAT_RX, 1);
	if (ret == GC_PARSE_DROP) {
		gc_count(GC_STAT_DROP(pkt->drop), 1);
		return ret;
	}
	if (ret != GC_PARSE_RTP) {
		if (count)
			gc_count(pkt->reason, 1);
		return ret;
	}
	cell = bpf_map_lookup_elem(&gc_routes, &pkt->ssrc);
	r = cell ? bpf_map_lookup_elem(cell, &zero) : NULL;
	if (!r) {
		pkt->reason = GC_STAT_PASS_UNKNOWN_SSRC;
		if (count)
			gc_count(pkt->reason, 1);
		return GC_PARSE_PASS;
	}
	if (!gc_from_origin(r, pkt)) {
		pkt->drop = GC_DROP_SPOOFED;
		gc_count(GC_STAT_DROP(pkt->drop), 1);
		return GC_PARSE_DROP;
	}
	if (r->flags & GC_ROUTE_F_USERSPACE) {
		pkt->reason = GC_STAT_PASS_FANOUT_LIMIT;
		if (count)
			gc_count(pkt->reason, 1);
		return GC_PARSE_PASS;
	}
	*route = r;
	return GC_PARSE_RTP;
}

/* Metadata the frame arrived with (another XDP program's, a redirected
 * frame's) never reaches the TC program looking like a vouch: its first
 * word, where the magic would be, is cleared. */
static __always_inline int gc_meta_clear(struct xdp_md *ctx)
{
	__u32 *m = (void *)(long)ctx->data_meta;

	if ((void *)(m + 1) > (void *)(long)ctx->data)
		return 0;
	*m = 0;
	return 1;
}

/* Vouch for the valid media frame @pkt to the TC program, with the receive
 * time (struct gc_xdp_meta). Best effort: without metadata (a driver without
 * support; metadata already there, which is cleared, not added to) the TC
 * program verifies the frame in full and uses its own start as the receive
 * time. */
static __always_inline void gc_vouch(struct xdp_md *ctx, const struct gc_pkt *pkt)
{
	__u64 now = bpf_ktime_get_ns(), key = gc_meta_key;
	struct gc_xdp_meta *meta;

	if (!key) {
		key = ((__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32()) | 1;
		gc_meta_key = key;
	}
	if (gc_meta_clear(ctx) || bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return;
	meta->magic = GC_XDP_META_MAGIC;
	meta->ifindex = ctx->ingress_ifindex;
	meta->rx_ns = now;
	meta->key = key;
	meta->ssrc = pkt->ssrc;
	meta->udp_len = pkt->udp_len;
	meta->udp_check = pkt->udp_check;
}

/* The XDP program's vouch for this frame into @out: only metadata that is
 * exactly a struct gc_xdp_meta with this load's key, written on the
 * interface the frame came in on. Read before any helper that may move the
 * packet (and its metadata). */
static __always_inline int gc_read_vouch(struct __sk_buff *skb, struct gc_xdp_meta *out)
{
	struct gc_xdp_meta *meta = (void *)(long)skb->data_meta;
	void *data = (void *)(long)skb->data, *end = meta + 1;
	__u64 key = gc_meta_key;

	if (end > data)
		return 0;
	/* Not one test for !=: the verifier takes only <, <=, >, >= between
	 * metadata and packet pointers as bounds checks. */
	gc_barrier_var(end);
	if (end < data)
		return 0;
	if (meta->magic != GC_XDP_META_MAGIC || !key || meta->key != key ||
	    meta->ifindex != skb->ingress_ifindex || !meta->udp_len)
		return 0;
	__builtin_memcpy(out, meta, sizeof(*out));
	return 1;
}

SEC("xdp")
int groupcast_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const struct gc_route *route = NULL;
	struct gc_pkt pkt = {};

	switch (gc_classify(ctx, GC_CTX_XDP, data, data_end, &pkt, &route, 1, 0, 0, NULL)) {
	case GC_PARSE_DROP:
		return XDP_DROP;
	case GC_PARSE_RTP:
		gc_count(GC_STAT_RX_MEDIA, 1);
		gc_vouch(ctx, &pkt);
		return XDP_PASS;	/* to groupcast_tc, which replicates */
	default:
		gc_meta_clear(ctx);
		return XDP_PASS;
	}
}

/* Point the packet's destination at @addr/@port_be, fixing the IPv4 header
 * checksum and the UDP checksum (pseudo header + port) incrementally from
 * the current destination @cur/@cur_port_be, which is updated. */
static __always_inline int gc_set_dst(struct __sk_buff *skb, const struct gc_pkt *pkt,
				      __u32 *cur, __u16 *cur_port_be,
				      const __u32 *addr, __u16 port_be)
{
	__u32 csum_off = pkt->l4_off + offsetof(struct udphdr, check);

	if (pkt->family == GC_FAMILY_IPV4) {
		__u32 old = cur[0], new = addr[0];

		if (old != new) {
			if (bpf_l4_csum_replace(skb, csum_off, old, new,
						BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
				return -1;
			if (bpf_l3_csum_replace(skb, pkt->l3_off + offsetof(struct iphdr, check),
						old, new, 4))
				return -1;
			if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, daddr),
						&new, 4, 0))
				return -1;
			cur[0] = new;
		}
	} else {
		__u32 new[4] = { addr[0], addr[1], addr[2], addr[3] };

		if (cur[0] != new[0] || cur[1] != new[1] || cur[2] != new[2] || cur[3] != new[3]) {
			__s64 diff = bpf_csum_diff(cur, 16, new, 16, 0);

			if (diff < 0)
				return -1;
			/* MARK_MANGLED_0: a sum that comes out 0 is sent as
			 * 0xffff (an IPv6 receiver drops a zero checksum). */
			if (bpf_l4_csum_replace(skb, csum_off, 0, diff,
						BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
				return -1;
			/* No IPv6 header checksum absorbs the change:
			 * keep a CHECKSUM_COMPLETE skb->csum right. */
			if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct ipv6hdr, daddr),
						new, 16, BPF_F_RECOMPUTE_CSUM))
				return -1;
			cur[0] = new[0];
			cur[1] = new[1];
			cur[2] = new[2];
			cur[3] = new[3];
		}
	}
	if (*cur_port_be != port_be) {
		if (bpf_l4_csum_replace(skb, csum_off, *cur_port_be, port_be,
					BPF_F_MARK_MANGLED_0 | 2))
			return -1;
		if (bpf_skb_store_bytes(skb, pkt->l4_off + offsetof(struct udphdr, dest),
					&port_be, 2, 0))
			return -1;
		*cur_port_be = port_be;
	}
	return 0;
}

/* Turn the packet around: source := the SFU (its old destination),
 * destination := the origin. A swap leaves every checksum unchanged. */
static __always_inline int gc_swap_addrs(struct __sk_buff *skb, const struct gc_pkt *pkt)
{
	__u16 ports[2] = { pkt->dport, pkt->sport };

	if (pkt->family == GC_FAMILY_IPV4) {
		__u32 addrs[2] = { pkt->daddr[0], pkt->saddr[0] };

		if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, saddr),
					addrs, 8, 0))
			return -1;
	} else {
		__u32 addrs[8] = {
			pkt->daddr[0], pkt->daddr[1], pkt->daddr[2], pkt->daddr[3],
			pkt->saddr[0], pkt->saddr[1], pkt->saddr[2], pkt->saddr[3],
		};

		if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct ipv6hdr, saddr),
					addrs, 32, 0))
			return -1;
	}
	return bpf_skb_store_bytes(skb, pkt->l4_off, ports, 4, 0);
}

/* State of the replication loop, shared with gc_send_copy() (bpf_loop()
 * verifies the callback once, whatever the fan-out; an open-coded loop
 * would be verified once per subscriber and per parse path). */
struct gc_loop_ctx {
	struct __sk_buff *skb;
	const struct gc_route *route;
	const struct gc_pkt *pkt;
	__u32 *cur;		/* current destination address in the packet */
	__u16 *cur_port;	/* current destination port */
	__u32 ipv4_plain;	/* IPv4 without options behind an untagged Ethernet header */
	__u32 sent;
	__u32 lost;		/* copies not sent (family, send failed), rewrite failures aside */
	__u32 failed;		/* a rewrite failed at subscriber failed_at: the loop stopped */
	__u32 failed_at;
};

/* csum_replace4() of the kernel (RFC 1624 eqn. 3): the IPv4 header
 * checksum @check after a 4-byte field changes from @from to @to, with the
 * kernel's terms (~csum_unfold() of the 16-bit field is 32 bits wide), so
 * the same bytes as bpf_l3_csum_replace() writes. */
static __always_inline __u16 gc_csum_replace4(__u16 check, __u32 from, __u32 to)
{
	return ~gc_csum_fold((__u64)(__u32)~(__u32)check + (__u32)~from + to);
}

/* gc_set_dst() for IPv4 without options behind an untagged Ethernet header
 * (lc->ipv4_plain), plus the MACs: only the UDP checksum goes through a
 * helper (only bpf_l4_csum_replace() knows the skb's checksum state:
 * CHECKSUM_PARTIAL keeps the pseudo header's sum there, COMPLETE needs
 * skb->csum fixed); MACs, address, IPv4 header checksum and port are plain
 * stores into the packet, in place of four helper calls. The bytes are
 * gc_set_dst()'s: the header's sum is unchanged (its checksum absorbs the
 * address, the UDP checksum the port), so a CHECKSUM_COMPLETE skb->csum
 * needs nothing more, as for bpf_l3_csum_replace() and stores without
 * BPF_F_RECOMPUTE_CSUM. The packet is writable here: the TC program's
 * prologue unclones it, and bpf_clone_redirect() unclones it after each
 * clone (for direct writes, net/core/filter.c). */
static __always_inline int gc_set_dst_ipv4_plain(struct __sk_buff *skb, struct gc_loop_ctx *lc,
						 const struct gc_subscriber *s)
{
	__u32 csum_off = sizeof(struct ethhdr) + sizeof(struct iphdr) +
			 offsetof(struct udphdr, check);
	__u32 old = lc->cur[0], new = *(const __u32 *)s->addr;
	__u16 port_be = s->port;
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;

	/* Helpers first: each invalidates the packet pointers. */
	if (old != new &&
	    bpf_l4_csum_replace(skb, csum_off, old, new, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
		return -1;
	if (*lc->cur_port != port_be &&
	    bpf_l4_csum_replace(skb, csum_off, *lc->cur_port, port_be, BPF_F_MARK_MANGLED_0 | 2))
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return -1;
	/* dst_mac and src_mac are adjacent in the subscriber entry. */
	__builtin_memcpy(eth->h_dest, s->dst_mac, 12);
	if (old != new) {
		ip->check = gc_csum_replace4(ip->check, old, new);
		ip->daddr = new;
		lc->cur[0] = new;
	}
	udp->dest = port_be;
	*lc->cur_port = port_be;
	return 0;
}

/* Give the packet the tag of VLAN @vlan_id (0: none) in place of the one it
 * carries. The tag travels out of band (skb->vlan_tci): the device or the
 * stack's transmit puts it on the wire, and no header moves. What the packet
 * carries is read from the skb, not kept in the loop's state: a value
 * carried from one bpf_loop() round to the next costs the verifier a state
 * per value. */
static __always_inline int gc_set_vlan(struct __sk_buff *skb, __u32 vlan_id)
{
	if (skb->vlan_present) {
		if ((skb->vlan_tci & 0x0fff) == vlan_id)
			return 0;
		if (bpf_skb_vlan_pop(skb))
			return -1;
	}
	if (vlan_id && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan_id))
		return -1;
	return 0;
}

/* bpf_loop() callback: send the copy for subscriber @i. */
static long gc_send_copy(__u32 i, void *data)
{
	struct gc_loop_ctx *lc = data;
	const struct gc_subscriber *s;
	struct __sk_buff *skb = lc->skb;

	if (i >= GC_MAX_SUBSCRIBERS)
		return 1;
	s = &lc->route->subs[i];
	if (s->family != lc->pkt->family) {
		gc_count(GC_STAT_DROP(GC_DROP_FAMILY), 1);
		lc->lost++;
		return 0;
	}
	if (s->vlan_id > GC_VLAN_ID_MAX) {
		/* Not a VLAN id (the loader never installs one). */
		gc_count(GC_STAT_DROP(GC_DROP_SEND_FAILED), 1);
		lc->lost++;
		return 0;
	}
	if ((lc->ipv4_plain ? gc_set_dst_ipv4_plain(skb, lc, s) :
			      gc_set_dst(skb, lc->pkt, lc->cur, lc->cur_port,
					 (const __u32 *)s->addr, s->port) ||
			      /* dst_mac and src_mac are adjacent in the subscriber entry. */
			      bpf_skb_store_bytes(skb, 0, s->dst_mac, 12, 0)) ||
	    gc_set_vlan(skb, s->vlan_id)) {
		lc->failed = 1;
		lc->failed_at = i;
		return 1;	/* the packet is in an unknown state: stop */
	}
	if (bpf_clone_redirect(skb, s->ifindex, 0)) {
		gc_count(GC_STAT_DROP(GC_DROP_SEND_FAILED), 1);
		lc->lost++;
	} else {
		lc->sent++;
	}
	return 0;
}

SEC("tc")
int groupcast_tc(struct __sk_buff *skb)
{
	const struct gc_route *route = NULL;
	struct gc_media_counters *media;
	struct gc_pkt pkt = {};
	struct gc_loop_ctx lc = {};
	struct gc_xdp_meta vouch;
	__u32 cur[4], n, sent, lost, bytes;
	__u16 cur_port;
	__u8 macs[12];
	void *data, *data_end;
	__u64 rx_ns;
	int ret, oob_tag, vouched, tc_ingress;

	/* The first judge (GC_INGRESS_TC): count what the XDP program
	 * counts; take no metadata for a vouch (no XDP program of ours). */
	tc_ingress = gc_cfg.ingress == GC_INGRESS_TC;
	/* Before any helper that may move the packet (and its metadata). */
	vouched = tc_ingress ? 0 : gc_read_vouch(skb, &vouch);
	if (vouched) {
		rx_ns = vouch.rx_ns;
		pkt.vouch_len = vouch.udp_len;
		pkt.vouch_check = vouch.udp_check;
	} else {
		rx_ns = bpf_ktime_get_ns();
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	/* The whole datagram, for its checksum (a no-op when already linear). */
	if (skb->len > data_end - data) {
		bpf_skb_pull_data(skb, skb->len);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}

	oob_tag = 0;
	if (skb->vlan_present)
		oob_tag = skb->vlan_proto == bpf_htons(ETH_P_8021Q) ? GC_VLAN_TAG_8021Q
								   : GC_VLAN_TAG_8021AD;
	ret = gc_classify(skb, GC_CTX_SKB, data, data_end, &pkt, &route, tc_ingress, oob_tag,
			  skb->vlan_tci & 0x0fff, vouched ? &vouch : NULL);
	if (ret == GC_PARSE_DROP)
		return TC_ACT_SHOT;
	if (ret != GC_PARSE_RTP || !route)
		return TC_ACT_OK;
	if (tc_ingress)
		gc_count(GC_STAT_RX_MEDIA, 1);

	/* The route's media: counted here, where it is replicated (what
	 * goes up to user space is counted there). */
	bytes = pkt.udp_len > sizeof(struct udphdr) ? pkt.udp_len - sizeof(struct udphdr) : 0;
	media = bpf_map_lookup_elem(&gc_media, &pkt.ssrc);
	if (media) {
		media->received++;
		media->received_bytes += bytes;
	}

	n = route->n_subs;
	if (n > GC_MAX_SUBSCRIBERS)
		n = GC_MAX_SUBSCRIBERS;
	/* Nothing sent yet: the whole route and the echo are lost. */
	lost = n + (gc_cfg.echo ? 1 : 0);
	/* Each copy gets its next hop's tag, the echo the origin's: start
	 * from none. The stack has taken a received tag off already (out of
	 * band); one still in the frame (a test run) goes, and every header
	 * moves up by its 4 bytes. */
	if (pkt.vlan) {
		int in_band = !skb->vlan_present;

		if (bpf_skb_vlan_pop(skb))
			goto rewrite_failed;
		if (in_band) {
			pkt.l3_off -= sizeof(struct gc_vlan_hdr);
			pkt.l4_off -= sizeof(struct gc_vlan_hdr);
			pkt.rtp_off -= sizeof(struct gc_vlan_hdr);
		}
	}
	if (gc_swap_addrs(skb, &pkt))
		goto rewrite_failed;
	cur[0] = pkt.saddr[0];
	cur[1] = pkt.saddr[1];
	cur[2] = pkt.saddr[2];
	cur[3] = pkt.saddr[3];
	cur_port = pkt.sport;

	lc.skb = skb;
	lc.route = route;
	lc.pkt = &pkt;
	lc.cur = cur;
	lc.cur_port = &cur_port;
	/* Any tag is out of band by now (popped above), so the IP header
	 * follows the Ethernet header. */
	lc.ipv4_plain = pkt.family == GC_FAMILY_IPV4 && pkt.l3_off == sizeof(struct ethhdr) &&
			pkt.l4_off == sizeof(struct ethhdr) + sizeof(struct iphdr);
	bpf_loop(n, gc_send_copy, &lc, 0);
	/* The copies sent before a failed rewrite went out: they count. */
	sent = lc.sent;
	if (sent)
		gc_count(GC_STAT_FORWARDED, sent);
	if (media) {
		media->forwarded += sent;
		media->forwarded_bytes += (__u64)sent * bytes;
		media->dropped += lc.lost;
	}
	if (lc.failed) {
		/* The copy whose rewrite failed, those after it, and the echo. */
		lost = n - lc.failed_at + (gc_cfg.echo ? 1 : 0);
		goto rewrite_failed;
	}

	if (!gc_cfg.echo) {
		gc_count(GC_STAT_CONSUMED, 1);
		gc_record_delay(rx_ns);
		return TC_ACT_SHOT;
	}
	lost = 1;	/* from here on, only the echo can be lost */
	if (lc.ipv4_plain) {
		/* The copies' plain stores, to the origin as a subscriber
		 * (its MAC from the frame's source, ours from its destination). */
		struct gc_subscriber back = { .port = pkt.sport };

		__builtin_memcpy(back.addr, pkt.saddr, 4);
		__builtin_memcpy(back.dst_mac, pkt.eth_src, 6);
		__builtin_memcpy(back.src_mac, pkt.eth_dst, 6);
		if (gc_set_dst_ipv4_plain(skb, &lc, &back) || gc_set_vlan(skb, pkt.vlan_id))
			goto rewrite_failed;
	} else {
		if (gc_set_dst(skb, &pkt, cur, &cur_port, pkt.saddr, pkt.sport) ||
		    gc_set_vlan(skb, pkt.vlan_id))
			goto rewrite_failed;
		__builtin_memcpy(macs, pkt.eth_src, 6);
		__builtin_memcpy(macs + 6, pkt.eth_dst, 6);
		if (bpf_skb_store_bytes(skb, 0, macs, 12, 0))
			goto rewrite_failed;
	}
	ret = bpf_redirect(skb->ifindex, 0);
	if (ret != TC_ACT_REDIRECT) {
		gc_count(GC_STAT_DROP(GC_DROP_SEND_FAILED), 1);
		if (media)
			media->dropped++;
		return TC_ACT_SHOT;
	}
	gc_count(GC_STAT_ECHOED, 1);
	if (media) {
		media->echoed++;
		media->echoed_bytes += bytes;
	}
	gc_record_delay(rx_ns);
	return ret;

rewrite_failed:
	/* Counted per copy not sent, never as forwarded. */
	gc_count(GC_STAT_DROP(GC_DROP_REWRITE_FAILED), lost);
	if (media)
		media->dropped += lost;
	return TC_ACT_SHOT;
}
