// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench.bpf.c - programs used only by scripts/bench/bpf (not the product):
 *
 *   bench_sink        XDP: count and drop.
 *   bench_tc_sink     TC ingress: count and drop (the receivers' end of the
 *                     benchmark: an XDP sink on a veth would first copy every
 *                     cloned skb into a page, a cost real NICs do not have).
 *   bench_devmap_in   XDP: the alternative replication mechanism measured
 *   bench_devmap_out  against groupcast_tc: validate (shared parsing.h), turn
 *                     the packet around, bpf_redirect_map(BPF_F_BROADCAST) to
 *                     every device in a DEVMAP_HASH; the devmap egress program
 *                     rewrites each copy for the subscriber behind its egress
 *                     device. One copy per device is all broadcast can make,
 *                     and the egress program only learns the device, so this
 *                     needs one subscriber per interface: IPv4 only, for the
 *                     measurement.
 *   bench_clone_floor TC ingress: the floor of the fast path's copy, its
 *                     mechanism bare: bpf_clone_redirect() of the received
 *                     frame, unchanged, to every device in floor_ports, then
 *                     bpf_redirect() of the original back out of the ingress
 *                     device (the echo). No parsing, validation or rewrite.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "groupcast_layout.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u16 bench_port = 5004;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

static __always_inline void count_sunk(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&sink_count, &k);

	if (v)
		*v += 1;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	count_sunk();
	return XDP_DROP;
}

SEC("tc")
int bench_tc_sink(struct __sk_buff *skb)
{
	count_sunk();
	return TC_ACT_SHOT;
}

/* ssrc -> origin (address, port), as in gc_routes. */
struct dm_origin {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct dm_origin);
} dm_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} dm_ports SEC(".maps");

/* egress ifindex -> the subscriber behind it (the origin for the ingress
 * device, which makes the echo). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct gc_subscriber);
} dm_subs SEC(".maps");

SEC("xdp")
int bench_devmap_in(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct gc_pkt pkt = {};
	struct dm_origin *o;
	struct iphdr *iph;
	struct udphdr *udp;
	__u32 a;
	__u16 p;

	if (gc_parse(data, data_end, bpf_htons(bench_port), &pkt, ctx, GC_CTX_XDP) != GC_PARSE_RTP ||
	    pkt.family != GC_FAMILY_IPV4)
		return XDP_PASS;
	o = bpf_map_lookup_elem(&dm_routes, &pkt.ssrc);
	if (!o)
		return XDP_PASS;
	if (o->addr != pkt.saddr[0] || o->port != pkt.sport)
		return XDP_DROP;
	iph = data + sizeof(struct ethhdr) + (pkt.vlan ? sizeof(struct gc_vlan_hdr) : 0);
	if ((void *)(iph + 1) > data_end)
		return XDP_DROP;
	udp = (void *)iph + iph->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;
	/* swap: every checksum stays valid */
	a = iph->saddr;
	iph->saddr = iph->daddr;
	iph->daddr = a;
	p = udp->source;
	udp->source = udp->dest;
	udp->dest = p;
	return bpf_redirect_map(&dm_ports, 0, BPF_F_BROADCAST);
}

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* RFC 1624: HC' = ~(~HC + ~m + m') over 16-bit words. */
static __always_inline __u16 csum_replace(__u16 check, __u32 old, __u32 new)
{
	__u32 s = (__u16)~check;

	s += (__u16)~(old & 0xffff) + (__u16)~(old >> 16);
	s += (new & 0xffff) + (new >> 16);
	return ~csum_fold(s);
}

SEC("xdp/devmap")
int bench_devmap_out(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->egress_ifindex;
	struct gc_subscriber *s;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct udphdr *udp;
	__u32 new_ip, ihl;

	s = bpf_map_lookup_elem(&dm_subs, &ifindex);
	if (!s)
		return XDP_DROP;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_DROP;
	ihl = iph->ihl * 4;
	if (ihl < 20)
		return XDP_DROP;
	udp = (void *)iph + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, s->dst_mac, 6);
	__builtin_memcpy(eth->h_source, s->src_mac, 6);
	new_ip = *(__u32 *)s->addr;
	if (udp->check) {
		__u16 c = csum_replace(udp->check, iph->daddr, new_ip);

		c = csum_replace(c, udp->dest, s->port);
		udp->check = c ? c : 0xffff;
	}
	iph->check = csum_replace(iph->check, iph->daddr, new_ip);
	iph->daddr = new_ip;
	udp->dest = s->port;
	return XDP_PASS;
}

/* bench_clone_floor's copies: floor_cfg[0] = how many, floor_ports[i] = the
 * ifindex of copy i's device. */
#define FLOOR_MAX_COPIES 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} floor_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOOR_MAX_COPIES);
	__type(key, __u32);
	__type(value, __u32);
} floor_ports SEC(".maps");

SEC("tc")
int bench_clone_floor(struct __sk_buff *skb)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&floor_cfg, &zero), *ifindex, i;

	if (!n)
		return TC_ACT_OK;
	for (i = 0; i < FLOOR_MAX_COPIES && i < *n; i++) {
		ifindex = bpf_map_lookup_elem(&floor_ports, &i);
		if (ifindex)
			bpf_clone_redirect(skb, *ifindex, 0);
	}
	return bpf_redirect(skb->ifindex, 0);
}
