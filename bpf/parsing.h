/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parsing.h - bounds-checked parsing of SFU media packets, for BPF programs.
 *
 * Ethernet (+ at most one 802.1Q/802.1ad tag), IPv4 (options, IHL, total
 * length, fragments), IPv6 (payload length, up to GC_MAX_IPV6_EXT extension
 * headers, fragment header), UDP, and the RTP v2 fixed header (RFC 3550 5.1).
 * Every header is checked against data_end before it is read, so the same
 * code works in XDP (struct xdp_md) and TC (struct __sk_buff) programs; the
 * fast path (groupcast.bpf.c) and the AF_XDP redirect program share it.
 *
 * gc_parse() classifies a frame:
 *   GC_PARSE_OTHER  not a UDP datagram to the SFU port (or cannot be told):
 *                   leave it to the stack, count nothing.
 *   GC_PARSE_RTP    an RTP v2 packet to the SFU port; pkt is filled in.
 *   GC_PARSE_PASS   SFU-port traffic for user space (pkt->reason, a GC_STAT_PASS_*, says why).
 *   GC_PARSE_DROP   malformed; never to be forwarded (pkt->drop, an enum gc_drop, says why).
 * pkt->to_port is 1 once the UDP destination port matched (for GC_STAT_RX).
 * Malformed IPv4/IPv6 headers are dropped whatever their port: the stack
 * would discard them too, and their port cannot be trusted.
 */
#ifndef GROUPCAST_PARSING_H
#define GROUPCAST_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "groupcast_layout.h"

#ifndef IP_MF
#define IP_MF		0x2000
#endif
#ifndef IP_OFFSET
#define IP_OFFSET	0x1fff
#endif
#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP	0
#define NEXTHDR_ROUTING	43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST	60
#endif

/* Extension headers (hop-by-hop, routing, destination options) walked to
 * find the UDP header of an IPv6 packet. */
#define GC_MAX_IPV6_EXT	4

#define GC_RTP_HDR_LEN	12
/* Longest media datagram the SFU forwards (Docs/protocol.md). */
#define GC_RTP_MAX_LEN	9216

/* Make a derived packet pointer opaque to the compiler, so that it keeps the
 * pointer the bounds check was made on instead of recomputing it from a
 * spilled base + offset (which the verifier would see without its range). */
#define gc_barrier_var(var) asm volatile("" : "+r"(var))

/* A 16-bit network-order length, with bounds the verifier can see: kernels
 * before 6.5 or so do not track bounds through a byte swap, so mask it, and
 * hide the value from the compiler first so that it keeps the mask. Needed
 * wherever the result is added to a packet pointer. */
static __always_inline __u32 gc_len16(__be16 v)
{
	__u32 x = bpf_ntohs(v);

	gc_barrier_var(x);
	return x & 0xffff;
}

enum gc_parse {
	GC_PARSE_OTHER = 0,
	GC_PARSE_RTP,
	GC_PARSE_PASS,
	GC_PARSE_DROP,
};

/* struct gc_pkt.vlan: the frame carried a tag in band (XDP, the ring; TC
 * sees the tag out of band, in skb->vlan_tci). */
#define GC_VLAN_TAG_8021Q	1
#define GC_VLAN_TAG_8021AD	2	/* a service tag (QinQ): never served */

struct gc_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct gc_rtp_hdr {
	__u8  vpxcc;		/* V(2) P(1) X(1) CC(4) */
	__u8  mpt;		/* M(1) PT(7) */
	__be16 seq;
	__be32 ts;
	__be32 ssrc;
};

struct gc_frag6_hdr {
	__u8   nexthdr;
	__u8   reserved;
	__be16 frag_off;	/* offset(13) res(2) M(1) */
	__be32 id;
};

/* What gc_parse() found. Offsets are from the start of the frame. */
struct gc_pkt {
	__u16 l3_off;		/* IPv4/IPv6 header */
	__u16 l4_off;		/* UDP header */
	__u16 rtp_off;		/* RTP header */
	__u16 udp_len;		/* UDP length (header + payload), host order */
	__u32 saddr[4];		/* source address, network order (IPv4: [0]) */
	__u32 daddr[4];		/* destination address, network order */
	__u16 sport;		/* network order */
	__u16 dport;		/* network order */
	__u32 ssrc;		/* host order */
	__u8  family;		/* GC_FAMILY_IPV4 / GC_FAMILY_IPV6 */
	__u8  to_port;		/* the UDP destination port is the SFU port */
	__u8  vlan;		/* one tag was skipped: GC_VLAN_TAG_* */
	__u8  reason;		/* GC_PARSE_PASS: enum gc_stat (GC_STAT_PASS_*) */
	__u8  drop;		/* GC_PARSE_DROP: enum gc_drop */
	__u8  reserved;
	__u16 vlan_id;		/* the skipped tag's VLAN id (12 bits), host order */
	__u8  eth_dst[6];
	__u8  eth_src[6];
	__u16 udp_check;	/* the UDP checksum field, network order */
	/* In, zero when none: a UDP checksum the caller vouches for (the fast
	 * path's XDP program verified it on this frame: struct gc_xdp_meta).
	 * A datagram of this length with this checksum field is not summed. */
	__u16 vouch_len;	/* UDP length, host order */
	__u16 vouch_check;	/* UDP checksum field, network order */
};

static __always_inline int gc_parse_drop(struct gc_pkt *pkt, enum gc_drop why)
{
	pkt->drop = why;
	return GC_PARSE_DROP;
}

/* Where gc_parse() runs: it needs the program's context to read the whole
 * datagram for its checksum (XDP and TC read it with different helpers). */
enum gc_ctx_kind {
	GC_CTX_USER = 0,	/* plain memory (the ring core in user space); ctx unused */
	GC_CTX_XDP,		/* ctx: struct xdp_md */
	GC_CTX_SKB,		/* ctx: struct __sk_buff */
};

static __always_inline __u16 gc_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Longest UDP datagram whose checksum is verified (media datagrams are at
 * most 9216 bytes, Docs/protocol.md); a longer one is left to the stack. */
#define GC_CSUM_MAX_CHUNKS	145	/* x 64 bytes */

/*
 * The one's complement sum of a datagram, in memory order (the byte order
 * of the result does not matter: a valid checksum folds to 0xffff either
 * way). In BPF, bpf_loop() over 64-byte chunks copied to the stack with the
 * program type's load helper (zero-padded, which is how an odd last byte is
 * summed), bpf_csum_diff() summing each: the callback is verified once, where
 * an open-coded loop over packet pointers cost the verifier a state per
 * length (700,000 of its 1,000,000 instructions).
 */
#ifdef __bpf__
struct gc_csum_loop {
	void *ctx;
	__u32 off;		/* the datagram, from the start of the frame */
	__u32 len;
	__u64 sum;
	__u32 failed;
};

#define GC_CSUM_CHUNK_FN(name, load)						\
static long name(__u32 i, void *data)						\
{										\
	struct gc_csum_loop *c = data;						\
	__u8 buf[64];								\
	__u32 off = (i & 0xff) * 64, n;						\
										\
	if (off >= c->len)							\
		return 1;							\
	n = c->len - off;	/* >= 1 */					\
	if (n > sizeof(buf))							\
		n = sizeof(buf);						\
	gc_barrier_var(n);							\
	n = ((n - 1) & 63) + 1;	/* 1..64, as the verifier can see */		\
	__builtin_memset(buf, 0, sizeof(buf));					\
	if (load(c->ctx, c->off + off, buf, n)) {				\
		c->failed = 1;							\
		return 1;							\
	}									\
	c->sum += (__u32)bpf_csum_diff(NULL, 0, (void *)buf, sizeof(buf), 0);	\
	return 0;								\
}
GC_CSUM_CHUNK_FN(gc_csum_chunk_xdp, bpf_xdp_load_bytes)
GC_CSUM_CHUNK_FN(gc_csum_chunk_skb, bpf_skb_load_bytes)
#undef GC_CSUM_CHUNK_FN
#endif

/* The UDP checksum of the datagram at @udp (@ulen bytes, within the frame
 * [@data, @data_end)) with its pseudo header verifies. */
static __always_inline int gc_udp_csum_ok(void *data, void *data_end, void *udp, __u32 ulen,
					  const struct gc_pkt *pkt, void *ctx, int ctx_kind)
{
	__u64 sum = 0;
	__u32 i;

	if (ulen > GC_CSUM_MAX_CHUNKS * 64)
		return 0;
#ifdef __bpf__
	{
		struct gc_csum_loop c = { .ctx = ctx, .off = udp - data, .len = ulen };

		if (ctx_kind == GC_CTX_XDP)
			bpf_loop((ulen + 63) / 64, gc_csum_chunk_xdp, &c, 0);
		else
			bpf_loop((ulen + 63) / 64, gc_csum_chunk_skb, &c, 0);
		if (c.failed)
			return 0;
		sum = c.sum;
	}
#else
	{
		const __u8 *b = udp;

		if ((void *)(b + ulen) > data_end)
			return 0;
		for (i = 0; i + 1 < ulen; i += 2) {
			__u16 w;

			__builtin_memcpy(&w, b + i, 2);
			sum += w;
		}
		if (ulen & 1) {
			__u16 w = 0;

			__builtin_memcpy(&w, b + ulen - 1, 1);	/* padded with a zero byte */
			sum += w;
		}
	}
#endif
	sum += (pkt->saddr[0] & 0xffff) + (pkt->saddr[0] >> 16) +
	       (pkt->daddr[0] & 0xffff) + (pkt->daddr[0] >> 16);
	if (pkt->family == GC_FAMILY_IPV6) {
		for (i = 1; i < 4; i++)
			sum += (pkt->saddr[i] & 0xffff) + (pkt->saddr[i] >> 16) +
			       (pkt->daddr[i] & 0xffff) + (pkt->daddr[i] >> 16);
	}
	sum += bpf_htons(IPPROTO_UDP) + bpf_htons((__u16)ulen);
	return gc_csum_fold(sum) == 0xffff;
}

/* RTPHeader.parse's rules beyond the fixed header (Docs/protocol.md): the
 * CSRC list and the header extension end within the datagram, and a padding
 * count is at least 1 and leaves the header intact. @rtp_len: RTP bytes
 * (UDP length - 8); @last_off: the datagram's last byte, from @data. */
static __always_inline int gc_rtp_valid(void *data, void *data_end, struct gc_rtp_hdr *rtp,
					__u32 rtp_len, __u32 last_off)
{
	__u8 *last;

	__u32 off = GC_RTP_HDR_LEN + 4 * (rtp->vpxcc & 0x0f);

	if (off > rtp_len)
		return 0;
	if (rtp->vpxcc & 0x10) {
		__u8 *ext = (__u8 *)rtp + (off & 0x7f);	/* <= 12 + 60 */

		gc_barrier_var(ext);
		if (off + 4 > rtp_len || (void *)(ext + 4) > data_end)
			return 0;
		off += 4 + 4 * (((__u32)ext[2] << 8) | ext[3]);
		if (off > rtp_len)
			return 0;
	}
	if (rtp->vpxcc & 0x20) {
		__u32 pad;

		/* Bounded for the verifier (GC_RTP_MAX_LEN keeps the offset below). */
		last = data + (last_off & 0x3fff);
		gc_barrier_var(last);
		if ((void *)(last + 1) > data_end)
			return 0;
		pad = *last;
		if (pad == 0 || pad > rtp_len - off)
			return 0;
	}
	return 1;
}

/* The UDP header at @udp and the RTP header behind it; @ip_payload_len is
 * the length the IP header gives for UDP header + payload. */
static __always_inline int gc_parse_udp_rtp(void *data, void *data_end, struct udphdr *udp,
					    __u32 ip_payload_len, __u16 port_be,
					    struct gc_pkt *pkt, void *ctx, int ctx_kind)
{
	struct gc_rtp_hdr *rtp;
	__u32 ulen;

	gc_barrier_var(udp);
	if ((void *)(udp + 1) > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	if (udp->dest != port_be)
		return GC_PARSE_OTHER;
	pkt->to_port = 1;
	pkt->sport = udp->source;
	pkt->dport = udp->dest;
	pkt->l4_off = (void *)udp - data;

	/* As udp_rcv(): longer than the IP payload or shorter than a header is
	 * bad; shorter than the IP payload is trimmed (the rest is padding). */
	ulen = bpf_ntohs(udp->len);
	if (ulen > ip_payload_len || ulen < sizeof(*udp))
		return gc_parse_drop(pkt, GC_DROP_UDP_LENGTH);
	pkt->udp_len = ulen;
	if (pkt->family == GC_FAMILY_IPV6 && udp->check == 0)
		return gc_parse_drop(pkt, GC_DROP_UDP_CSUM_ZERO6);
	pkt->udp_check = udp->check;
	/* The stack's UDP receive drops a datagram whose checksum is wrong, and
	 * accepts a local sender's whose checksum is offloaded (the field then
	 * holds the pseudo-header sum only): what does not verify here goes to
	 * the stack, which tells the two apart. IPv4 checksum 0: none. A
	 * checksum the caller vouches for (pkt->vouch_*) is not summed again. */
	if (udp->check && !(pkt->vouch_len == ulen && pkt->vouch_check == udp->check) &&
	    !gc_udp_csum_ok(data, data_end, udp, ulen, pkt, ctx, ctx_kind)) {
		pkt->reason = GC_STAT_PASS_UDP_CSUM;
		return GC_PARSE_PASS;
	}

	rtp = (void *)(udp + 1);
	gc_barrier_var(rtp);
	if (ulen < sizeof(*udp) + GC_RTP_HDR_LEN || (void *)(rtp + 1) > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	/* The socket path drops media datagrams over 9216 bytes. */
	if (ulen - sizeof(*udp) > GC_RTP_MAX_LEN)
		return gc_parse_drop(pkt, GC_DROP_TOO_LARGE);
	if ((rtp->vpxcc >> 6) != 2)
		return gc_parse_drop(pkt, GC_DROP_BAD_RTP_VERSION);
	/* RTCP multiplexed on the RTP port (RFC 5761 4): packet types 192-223. */
	if (rtp->mpt >= 192 && rtp->mpt <= 223) {
		pkt->reason = GC_STAT_PASS_RTCP;
		return GC_PARSE_PASS;
	}
	if (!gc_rtp_valid(data, data_end, rtp, ulen - sizeof(*udp), pkt->l4_off + ulen - 1))
		return gc_parse_drop(pkt, GC_DROP_BAD_RTP_HEADER);
	pkt->rtp_off = (void *)rtp - data;
	pkt->ssrc = bpf_ntohl(rtp->ssrc);
	return GC_PARSE_RTP;
}

/* The IPv4 header checksum (ip_rcv drops a header whose sum is wrong):
 * the fixed 20 bytes, then up to 10 words of options. */
static __always_inline int gc_ipv4_csum_ok(void *data_end, struct iphdr *iph, __u32 hlen)
{
	__u32 *w = (__u32 *)iph;
	__u64 sum = 0;
	int i;

	for (i = 0; i < 5; i++)
		sum += w[i];
	for (i = 5; i < 15; i++) {
		__u32 *o = w + i;

		if ((__u32)i * 4 >= hlen)
			break;
		gc_barrier_var(o);
		if ((void *)(o + 1) > data_end)
			return 0;
		sum += *o;
	}
	return gc_csum_fold(sum) == 0xffff;
}

static __always_inline int gc_parse_ipv4(void *data, void *data_end, struct iphdr *iph,
					 __u16 port_be, struct gc_pkt *pkt, void *ctx, int ctx_kind)
{
	__u32 hlen, tot_len;
	__u16 frag;

	if ((void *)(iph + 1) > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	if (iph->version != 4 || iph->ihl < 5)
		return gc_parse_drop(pkt, GC_DROP_BAD_IP_HEADER);
	hlen = iph->ihl * 4;
	if ((void *)iph + hlen > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	tot_len = gc_len16(iph->tot_len);
	if (tot_len < hlen)
		return gc_parse_drop(pkt, GC_DROP_BAD_IP_HEADER);
	/* Ethernet may pad short frames: bytes past tot_len are allowed. */
	if ((void *)iph + tot_len > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	if (!gc_ipv4_csum_ok(data_end, iph, hlen))
		return gc_parse_drop(pkt, GC_DROP_BAD_IP_CHECKSUM);
	if (iph->protocol != IPPROTO_UDP)
		return GC_PARSE_OTHER;

	pkt->family = GC_FAMILY_IPV4;
	pkt->l3_off = (void *)iph - data;
	pkt->saddr[0] = iph->saddr;
	pkt->daddr[0] = iph->daddr;

	frag = bpf_ntohs(iph->frag_off);
	if (frag & IP_OFFSET)	/* a later fragment: no UDP header to look at */
		return GC_PARSE_OTHER;
	if (frag & IP_MF) {	/* the first fragment: drop it if it is ours */
		struct udphdr *udp = (void *)iph + hlen;

		if ((void *)(udp + 1) > data_end || udp->dest != port_be)
			return GC_PARSE_OTHER;
		pkt->to_port = 1;
		return gc_parse_drop(pkt, GC_DROP_FRAGMENT);
	}
	if (hlen > sizeof(*iph)) {
		/* Options (source routes, ...): the stack decides, as it does
		 * for a socket. */
		struct udphdr *udp = (void *)iph + hlen;

		gc_barrier_var(udp);
		if ((void *)(udp + 1) > data_end || udp->dest != port_be)
			return GC_PARSE_OTHER;
		pkt->to_port = 1;
		pkt->reason = GC_STAT_PASS_IP_OPTIONS;
		return GC_PARSE_PASS;
	}
	return gc_parse_udp_rtp(data, data_end, (void *)iph + hlen, tot_len - hlen, port_be, pkt,
				ctx, ctx_kind);
}

static __always_inline int gc_parse_ipv6(void *data, void *data_end, struct ipv6hdr *ip6,
					 __u16 port_be, struct gc_pkt *pkt, void *ctx, int ctx_kind)
{
	struct gc_frag6_hdr *fh;
	__u32 plen, ext_len = 0;
	__u8 nexthdr;
	void *l4;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
	if (ip6->version != 6)
		return gc_parse_drop(pkt, GC_DROP_BAD_IP_HEADER);
	plen = gc_len16(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > data_end)
		return gc_parse_drop(pkt, GC_DROP_TRUNCATED);

	pkt->family = GC_FAMILY_IPV6;
	pkt->l3_off = (void *)ip6 - data;
	__builtin_memcpy(pkt->saddr, &ip6->saddr, 16);
	__builtin_memcpy(pkt->daddr, &ip6->daddr, 16);

	nexthdr = ip6->nexthdr;
	l4 = ip6 + 1;
#pragma unroll
	for (i = 0; i < GC_MAX_IPV6_EXT; i++) {
		struct ipv6_opt_hdr *opt = l4;
		__u32 len;

		if (nexthdr != NEXTHDR_HOP && nexthdr != NEXTHDR_ROUTING && nexthdr != NEXTHDR_DEST)
			break;
		if ((void *)(opt + 1) > data_end)
			return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
		len = (opt->hdrlen + 1) * 8;
		nexthdr = opt->nexthdr;
		l4 += len;
		ext_len += len;
	}

	if (nexthdr == NEXTHDR_FRAGMENT) {
		struct udphdr *udp;

		fh = l4;
		if ((void *)(fh + 1) > data_end)
			return gc_parse_drop(pkt, GC_DROP_TRUNCATED);
		if (bpf_ntohs(fh->frag_off) & ~7)	/* a later fragment */
			return GC_PARSE_OTHER;
		udp = (void *)(fh + 1);
		if (fh->nexthdr != IPPROTO_UDP || (void *)(udp + 1) > data_end ||
		    udp->dest != port_be)
			return GC_PARSE_OTHER;
		pkt->to_port = 1;
		return gc_parse_drop(pkt, GC_DROP_FRAGMENT);
	}
	if (nexthdr != IPPROTO_UDP)
		return GC_PARSE_OTHER;
	if (ext_len) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || udp->dest != port_be)
			return GC_PARSE_OTHER;
		pkt->to_port = 1;
		pkt->reason = GC_STAT_PASS_IPV6_EXT;
		return GC_PARSE_PASS;
	}
	return gc_parse_udp_rtp(data, data_end, l4, plen, port_be, pkt, ctx, ctx_kind);
}

/* Classify the frame [data, data_end) for an SFU listening on UDP port
 * @port_be (network byte order). @pkt must be zeroed by the caller (IPv4
 * addresses fill only saddr[0]/daddr[0]). @ctx/@ctx_kind: the program's
 * context (enum gc_ctx_kind), for reading the datagram's checksum. */
static __always_inline int gc_parse(void *data, void *data_end, __u16 port_be,
				    struct gc_pkt *pkt, void *ctx, int ctx_kind)
{
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return GC_PARSE_OTHER;
	__builtin_memcpy(pkt->eth_dst, eth->h_dest, 6);
	__builtin_memcpy(pkt->eth_src, eth->h_source, 6);
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct gc_vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return GC_PARSE_OTHER;
		proto = vh->encap_proto;
		l3 = vh + 1;
		pkt->vlan = eth->h_proto == bpf_htons(ETH_P_8021Q) ? GC_VLAN_TAG_8021Q : GC_VLAN_TAG_8021AD;
		pkt->vlan_id = bpf_ntohs(vh->tci) & 0x0fff;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return gc_parse_ipv4(data, data_end, l3, port_be, pkt, ctx, ctx_kind);
	if (proto == bpf_htons(ETH_P_IPV6))
		return gc_parse_ipv6(data, data_end, l3, port_be, pkt, ctx, ctx_kind);
	return GC_PARSE_OTHER;
}

/* A source or destination no unicast exchange with the SFU can have: IPv4
 * 0/8, loopback 127/8, multicast 224/4 and above (class E, broadcast);
 * IPv6 ::, ::1, multicast ff00::/8, IPv4-mapped ::ffff:0:0/96. */
static __always_inline int gc_addr_martian(__u8 family, const __u32 *a)
{
	if (family == GC_FAMILY_IPV4) {
		__u8 first = bpf_ntohl(a[0]) >> 24;

		return first == 0 || first == 127 || first >= 224;
	}
	if ((bpf_ntohl(a[0]) >> 24) == 0xff)
		return 1;
	if (a[0] == 0 && a[1] == 0) {
		if (a[2] == 0 && (a[3] == 0 || a[3] == bpf_htonl(1)))
			return 1;
		if (a[2] == bpf_htonl(0xffff))
			return 1;
	}
	return 0;
}

/* Unicast Ethernet destination (no group bit). */
static __always_inline int gc_mac_unicast(const __u8 *mac)
{
	return !(mac[0] & 1);
}

#endif /* GROUPCAST_PARSING_H */
