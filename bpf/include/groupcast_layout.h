/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * groupcast_layout.h - the one copy of the constants and layouts shared by
 * the BPF programs (bpf/NAME.bpf.c), the C loader and AF_XDP ring core, and
 * Swift (the header-only SwiftPM target CGroupcastLayout): map values, route
 * limits, counters, pin names and the delay histogram's buckets.
 *
 * Only fixed-width types; every multi-byte field says its byte order.
 * Layout changes bump GC_ABI_VERSION (stored in struct gc_config, so a
 * loader can refuse maps pinned by a different layout).
 */
#ifndef GROUPCAST_LAYOUT_H
#define GROUPCAST_LAYOUT_H

#include <linux/types.h>

#define GC_ABI_VERSION		6

/* Most subscribers one route replicates to inside the kernel. A route with
 * more is installed with GC_ROUTE_F_USERSPACE: its packets are still checked
 * against the origin (spoofing) in the kernel, then passed up to the SFU
 * process, which replicates them (counted as GC_STAT_PASS_FANOUT_LIMIT). */
#define GC_MAX_SUBSCRIBERS	256

/* Default capacity of the route map (one entry per source SSRC). */
#define GC_DEFAULT_MAX_ROUTES	1024

/* Address family of a route or subscriber. */
#define GC_FAMILY_IPV4		4
#define GC_FAMILY_IPV6		6

/* Stream types of the pktswitch SFU. */
enum gc_stream_type {
	GC_STREAM_ASQ = 1,	/* audio, standard quality */
	GC_STREAM_VSQ = 2,	/* video, standard quality (base layer) */
	GC_STREAM_VHQ = 3,	/* video, high quality (enhancement layer) */
};

/* struct gc_route.flags */
#define GC_ROUTE_F_USERSPACE	(1u << 0)	/* replicate in user space (fan-out above the limit,
						 * or receivers the kernel cannot reach yet) */
#define GC_ROUTE_F_ALL		(GC_ROUTE_F_USERSPACE)

/*
 * One receiver of a stream.
 * @ifindex: egress interface (the copy leaves through it, in the SFU's netns);
 *           for a receiver behind a VLAN device, the device below it.
 * @port:    destination UDP port, network byte order.
 * @family:  GC_FAMILY_IPV4 or GC_FAMILY_IPV6; must equal the route's family.
 * @flags:   reserved, zero.
 * @dst_mac: the receiver's (or next hop's) MAC address.
 * @src_mac: the MAC address of @ifindex (the loader fills it in).
 * @addr:    destination address, network byte order: IPv4 in the first 4
 *           bytes (rest zero), IPv6 in all 16.
 * @vlan_id: the 802.1Q VLAN id the copy carries (its next hop's: the route
 *           to the receiver goes through that VLAN device), host byte order;
 *           0: untagged. 1..GC_VLAN_ID_MAX.
 */
struct gc_subscriber {
	__u32 ifindex;
	__u16 port;
	__u8  family;
	__u8  flags;
	__u8  dst_mac[6];
	__u8  src_mac[6];
	__u8  addr[16];
	__u16 vlan_id;
	__u16 reserved;		/* zero */
};

/* Highest 802.1Q VLAN id (4095 is reserved). */
#define GC_VLAN_ID_MAX		4094

/*
 * Value of the route map, keyed by the stream's SSRC (__u32, host byte order).
 * @origin_addr/@origin_port/@origin_vlan: the only source allowed to send on
 *   this SSRC (network byte order, IPv4 in the first 4 bytes) and the VLAN
 *   it sends on (host order, 0: untagged; the VLAN of the route back to the
 *   origin); packets from anywhere else, the same address on another VLAN
 *   included, are dropped as GC_DROP_SPOOFED.
 * @n_subs: number of valid entries in @subs (0..GC_MAX_SUBSCRIBERS).
 */
struct gc_route {
	__u8  origin_addr[16];
	__u16 origin_port;
	__u8  family;
	__u8  stream_type;	/* enum gc_stream_type */
	__u32 flags;		/* GC_ROUTE_F_* */
	__u32 n_subs;
	__u16 origin_vlan;
	__u16 reserved;		/* zero */
	struct gc_subscriber subs[GC_MAX_SUBSCRIBERS];
};

/*
 * The media of one route (source SSRC): what its origin sent and what went
 * to its receivers, for the SFU's per-room counters (it sums its routes per
 * room; Swift's MediaCounters has these fields). The XDP/TC programs keep
 * one per route in the per-CPU hash map "media" (key: the SSRC, host order;
 * the loader creates the entry with the route and sums over CPUs), the ring
 * core one per route of its table. Bytes are UDP payload bytes (the RTP
 * packet). Only media the data plane replicates is counted there: what goes
 * up to the SFU process (a user-space route) is counted by it.
 */
struct gc_media_counters {
	__u64 received;		/* datagrams from the route's origin (valid RTP of its stream) */
	__u64 received_bytes;
	__u64 forwarded;	/* copies sent to subscribers */
	__u64 forwarded_bytes;
	__u64 echoed;		/* originals sent back to their origin */
	__u64 echoed_bytes;
	__u64 dropped;		/* datagrams shed, copies lost (GC_DROP_SHED_*, HEAD_DROP,
				 * FAMILY, SEND_FAILED, REWRITE_FAILED) */
};

/* Adds @m to @total (per-CPU values summed, routes summed per room). */
static inline void gc_media_counters_add(struct gc_media_counters *total,
					 const struct gc_media_counters *m)
{
	total->received += m->received;
	total->received_bytes += m->received_bytes;
	total->forwarded += m->forwarded;
	total->forwarded_bytes += m->forwarded_bytes;
	total->echoed += m->echoed;
	total->echoed_bytes += m->echoed_bytes;
	total->dropped += m->dropped;
}

/*
 * The fast path's ingress (struct gc_config.ingress, the loader's
 * gcfp_attach_opts.ingress, the CLI's and the SFU's "ingress" options):
 *   GC_INGRESS_XDP  the XDP program judges every datagram first (drops
 *                   garbage before an skb exists, counts rx, rx_media and
 *                   pass_*) and vouches for valid media to the TC program,
 *                   which replicates. For real NICs.
 *   GC_INGRESS_TC   no XDP program: the TC program alone verifies every
 *                   datagram in full and counts what the XDP program would.
 *                   For veth and other virtual devices, where native XDP
 *                   copies each skb into a page first (Docs/fastpath.md).
 */
enum gc_ingress {
	GC_INGRESS_XDP = 0,
	GC_INGRESS_TC = 1,
};

/*
 * Read-only configuration of a loaded program (its .rodata, set before load).
 * @port:    the SFU's media UDP port, host byte order.
 * @echo:    1: every forwarded media packet also goes back to its origin.
 * @mac:     the attached interface's MAC: only frames sent to it are replicated
 *           (PACKET_HOST; broadcast, multicast and other hosts' frames go to the stack).
 * @ingress: the fast path's ingress, enum gc_ingress: which program judges a
 *           datagram first and counts it (rx, rx_media, pass_*).
 */
struct gc_config {
	__u32 abi_version;	/* GC_ABI_VERSION */
	__u16 port;
	__u8  echo;
	__u8  ingress;		/* enum gc_ingress; 0 (GC_INGRESS_XDP) in older pins */
	__u8  mac[6];
	__u8  reserved2[2];
};

/*
 * The host's own unicast addresses, set by the loader: the attached
 * interface's (@vlan_id 0) and those of the VLAN devices on top of it (their
 * VLAN id), or only the SFU's listen address where it is bound to one: the
 * only destinations the fast path replicates for, so a copy's source address
 * (the destination the sender used) is always the SFU's own, on the VLAN it
 * was sent on. Key of the "local" hash map; the value is a __u8, 1.
 * A key with family GC_FAMILY_VLAN (address zero) says VLAN @vlan_id is
 * served: there is a VLAN device for it on the interface. A frame tagged
 * with any other VLAN id is dropped (GC_DROP_VLAN), never forwarded.
 */
struct gc_local_addr {
	__u8 family;		/* GC_FAMILY_IPV4 / GC_FAMILY_IPV6 / GC_FAMILY_VLAN */
	__u8 reserved;
	__u16 vlan_id;		/* host order; 0: untagged */
	__u8 addr[16];		/* network order, IPv4 in the first 4 bytes */
};
#define GC_FAMILY_VLAN		0
#define GC_MAX_LOCAL_ADDRS	64

/*
 * Why a datagram, or one copy of it, was dropped: the one list of reasons of
 * every data plane. The XDP/TC programs count them in their counters
 * (GC_STAT_DROP(reason)), the AF_XDP ring core in struct gc_ring_stats, the
 * SFU process in Swift's DropReason (a view of this enum, CGroupcastLayout),
 * so a frame dropped by two backends for the same cause moves the same
 * counter. X(NAME, "name", "why"): GC_DROP_NAME, its name for tools and
 * metrics (gc_drop_name()).
 * Per copy (counting copies, not datagrams): FAMILY, SEND_FAILED,
 * REWRITE_FAILED, HEAD_DROP. Every other reason counts received datagrams.
 */
#define GC_DROP_REASONS(X) \
	X(TRUNCATED, "truncated", "frame or header shorter than a header or than its length field says; RTP shorter than its 12-byte header") \
	X(BAD_IP_HEADER, "bad_ip_header", "IPv4 version or IHL below 5, total length below the header; IPv6 version") \
	X(BAD_IP_CHECKSUM, "bad_ip_checksum", "IPv4 header checksum wrong (ip_rcv drops it too)") \
	X(FRAGMENT, "fragment", "a fragment of a datagram to the media port (never reassembled by a fast path)") \
	X(UDP_LENGTH, "udp_length", "UDP length above the IP payload or below 8") \
	X(UDP_CSUM_ZERO6, "udp_csum_zero6", "IPv6 UDP with checksum 0 (RFC 8200 8.1)") \
	X(UDP_CSUM, "udp_csum", "UDP checksum does not verify (ring: no stack to tell an offloaded one from a forged one)") \
	X(IP_OPTIONS, "ip_options", "IPv4 options (ring: no stack to judge them)") \
	X(IPV6_EXT, "ipv6_ext", "IPv6 extension headers (ring: no stack to judge them)") \
	X(VLAN, "vlan", "VLAN-tagged with an id no VLAN device of the interface has, or 802.1ad (QinQ)") \
	X(NOT_LOCAL, "not_local", "not unicast to this host (ring: no stack to hand it to)") \
	X(BAD_RTP_VERSION, "bad_rtp_version", "RTP version not 2") \
	X(BAD_RTP_HEADER, "bad_rtp_header", "RTP CSRC list or header extension past the end, padding count 0 or past the header") \
	X(TOO_LARGE, "too_large", "larger than the receive buffer, a UMEM frame, or 9216 bytes of RTP") \
	X(RTCP, "rtcp", "RTCP on the media port (not relayed)") \
	X(UNKNOWN_SSRC, "unknown_ssrc", "an SSRC nobody registered") \
	X(SPOOFED, "spoofed", "a registered SSRC from a source other than its origin") \
	X(SHED_VHQ, "shed_vhq", "VHQ shed while the SFU was behind") \
	X(SHED_VSQ, "shed_vsq", "VSQ shed while the SFU was far behind") \
	X(HEAD_DROP, "head_drop", "a copy dropped from the head of a receiver's full backlog") \
	X(FAMILY, "family", "a copy to a subscriber of the other address family (not sent)") \
	X(SEND_FAILED, "send_failed", "a copy the kernel refused (redirect or send failed, no next hop)") \
	X(REWRITE_FAILED, "rewrite_failed", "a header rewrite helper failed: that copy (and the rest) not sent")

#define GC_DROP_ENUM_ENTRY(id, name, why) GC_DROP_##id,
enum gc_drop {
	GC_DROP_REASONS(GC_DROP_ENUM_ENTRY)
	GC_DROP_MAX
};
#undef GC_DROP_ENUM_ENTRY

#define GC_DROP_NAME_ENTRY(id, name, why) name,
#define GC_DROP_STAT_NAME_ENTRY(id, name, why) "drop_" name,

/* The name of @reason ("spoofed"), NULL if out of range. */
static inline const char *gc_drop_name(__u32 reason)
{
	static const char *const names[GC_DROP_MAX] = { GC_DROP_REASONS(GC_DROP_NAME_ENTRY) };

	return reason < GC_DROP_MAX ? names[reason] : (const char *)0;
}

/*
 * Per-CPU counters of the XDP/TC programs, indexed by enum gc_stat; the
 * loader sums over CPUs. Counting points: the XDP program counts what it sees
 * (RX, PASS_*, drops); the TC program counts what it does (FORWARDED, ECHOED,
 * CONSUMED, the per-copy drops) and, if the XDP program is not in front of
 * it, the same drop reasons (XDP drops them first when attached, so nothing
 * is counted twice). Every datagram drop is also in RX (drops <= rx); the
 * per-copy drops count copies.
 */
enum gc_stat {
	GC_STAT_RX = 0,			/* IP datagrams judged: to the SFU port, or dropped as malformed
					 * before their port could be read (so every drop is in rx) */
	GC_STAT_RX_MEDIA,		/* of those: valid RTP of a registered stream from its origin */
	GC_STAT_FORWARDED,		/* copies sent to subscribers */
	GC_STAT_ECHOED,			/* originals sent back to their origin */
	GC_STAT_CONSUMED,		/* media handled with echo off (original freed, not an error) */
	GC_STAT_PASS_UNKNOWN_SSRC,	/* RTP with an SSRC without route: to user space */
	GC_STAT_PASS_FANOUT_LIMIT,	/* route marked GC_ROUTE_F_USERSPACE: to user space (over
					 * the fan-out limit, or a receiver not reachable yet) */
	GC_STAT_PASS_RTCP,		/* RTCP (RFC 5761 muxed) on the media port: to user space */
	GC_STAT_PASS_IPV6_EXT,		/* IPv6 with extension headers: to user space */
	GC_STAT_PASS_IP_OPTIONS,	/* IPv4 with options: to the stack, which accepts or drops
					 * them (source routes...) as for any socket */
	GC_STAT_PASS_UDP_CSUM,		/* UDP checksum did not verify: to the stack, whose UDP
					 * receive drops a bad one and accepts a local sender's
					 * offloaded (CHECKSUM_PARTIAL) one */
	GC_STAT_PASS_NOT_LOCAL,		/* not unicast to this host: Ethernet destination not the
					 * interface's MAC, or IP destination not one of its addresses,
					 * or a broadcast/multicast/loopback source: to the stack */
	GC_STAT_DROP_FIRST,		/* GC_STAT_DROP(reason): drops by enum gc_drop */
	GC_STAT_MAX = GC_STAT_DROP_FIRST + GC_DROP_MAX
};

/* The counter of drop reason @reason (enum gc_drop). */
#define GC_STAT_DROP(reason)	(GC_STAT_DROP_FIRST + (reason))

/* Names for enum gc_stat, for tools: GC_STAT_NAMES[i] is counter i. */
#define GC_STAT_NAMES { \
	"rx", "rx_media", "forwarded", "echoed", "consumed", \
	"pass_unknown_ssrc", "pass_fanout_limit", "pass_rtcp", "pass_ipv6_ext", \
	"pass_ip_options", "pass_udp_csum", "pass_not_local", \
	GC_DROP_REASONS(GC_DROP_STAT_NAME_ENTRY) }

/*
 * The delay histogram's buckets, for every data plane and the SFU's
 * LatencyHistogram (Sources/GroupcastSFU/Metrics.swift), so their counts
 * merge exactly: values below GC_DELAY_EXACT in their own bucket, then
 * GC_DELAY_SUB_BUCKETS per power of two (about 3 % relative error), up to
 * 2^64 - 1. gc_delay_bucket() is the one bucketing function.
 */
#define GC_DELAY_EXACT_SHIFT	6
#define GC_DELAY_SUB_SHIFT	5
#define GC_DELAY_EXACT		64	/* 1 << GC_DELAY_EXACT_SHIFT */
#define GC_DELAY_SUB_BUCKETS	32	/* 1 << GC_DELAY_SUB_SHIFT */
/* GC_DELAY_EXACT + (63 - GC_DELAY_EXACT_SHIFT + 1) * GC_DELAY_SUB_BUCKETS,
 * spelt out for Swift's importer. */
#define GC_DELAY_BUCKETS	1920
_Static_assert(GC_DELAY_EXACT == 1 << GC_DELAY_EXACT_SHIFT, "GC_DELAY_EXACT");
_Static_assert(GC_DELAY_SUB_BUCKETS == 1 << GC_DELAY_SUB_SHIFT, "GC_DELAY_SUB_BUCKETS");
_Static_assert(GC_DELAY_BUCKETS ==
	       GC_DELAY_EXACT + (63 - GC_DELAY_EXACT_SHIFT + 1) * GC_DELAY_SUB_BUCKETS,
	       "GC_DELAY_BUCKETS");

/* Index of the highest set bit of @v (!= 0). BPF has no count-leading-zeros
 * instruction: a branchy binary search there, the compiler's builtin elsewhere. */
static inline __attribute__((always_inline)) __u32 gc_fls64(__u64 v)
{
#ifdef __bpf__
	__u32 n = 0;

	if (v >> 32) { n += 32; v >>= 32; }
	if (v >> 16) { n += 16; v >>= 16; }
	if (v >> 8) { n += 8; v >>= 8; }
	if (v >> 4) { n += 4; v >>= 4; }
	if (v >> 2) { n += 2; v >>= 2; }
	if (v >> 1) n += 1;
	return n;
#else
	return 63 - __builtin_clzll(v);
#endif
}

/* The bucket of @ns: 0..GC_DELAY_BUCKETS - 1. */
static inline __attribute__((always_inline)) __u32 gc_delay_bucket(__u64 ns)
{
	__u32 exp, top;

	if (ns < GC_DELAY_EXACT)
		return ns;
	exp = gc_fls64(ns);					/* >= GC_DELAY_EXACT_SHIFT */
	top = ns >> (exp - GC_DELAY_SUB_SHIFT);			/* GC_DELAY_SUB_BUCKETS..2x - 1 */
	return GC_DELAY_EXACT + (exp - GC_DELAY_EXACT_SHIFT) * GC_DELAY_SUB_BUCKETS +
	       (top - GC_DELAY_SUB_BUCKETS);
}

/*
 * Processing delay of the in-kernel path, one sample per replicated packet:
 * from the XDP program's run on the frame (its receive; the time travels to
 * the TC program in the frame's metadata, struct gc_xdp_meta) to the TC
 * program's last copy scheduled, in ns. Without the XDP program in front
 * (or its metadata) the TC program's own start is the receive time.
 * Per-CPU, one entry; the loader sums over CPUs.
 */
struct gc_delay_hist {
	__u64 count;
	__u64 sum;		/* ns */
	__u64 max;		/* ns */
	__u64 buckets[GC_DELAY_BUCKETS];
};

/* Adds the samples of @h to @total (the per-CPU values of the map, summed). */
static inline void gc_delay_hist_add(struct gc_delay_hist *total, const struct gc_delay_hist *h)
{
	__u32 b;

	total->count += h->count;
	total->sum += h->sum;
	if (h->max > total->max)
		total->max = h->max;
	for (b = 0; b < GC_DELAY_BUCKETS; b++)
		total->buckets[b] += h->buckets[b];
}

/*
 * XDP -> TC metadata (bpf_xdp_adjust_meta), right before the frame: the XDP
 * program's receive time and its vouch for the datagram. Written only for
 * media it found valid (checksums, lengths, RTP, sent to this host on a
 * served VLAN, from the route's origin), and then exactly this struct (the
 * metadata's whole length). The TC program takes it for a vouch only when
 * @magic, @key and @ifindex are its own XDP program's and @udp_len,
 * @udp_check and @ssrc are those of the frame it holds; it then does not
 * sum the UDP checksum or look the local addresses up again. Anything else
 * (no metadata, another program's, another load's, another interface's, a
 * frame that does not match) is verified in full (Docs/fastpath.md).
 * 32 bytes: the most metadata older kernels let XDP add (newer ones: 255).
 */
#define GC_XDP_META_MAGIC	0x67635856	/* "gcXV" */
struct gc_xdp_meta {
	__u32 magic;		/* GC_XDP_META_MAGIC */
	__u32 ifindex;		/* the interface the XDP program ran on */
	__u64 rx_ns;		/* bpf_ktime_get_ns() in the XDP program */
	__u64 key;		/* the loaded object's random key (gc_meta_key), never 0 */
	__u32 ssrc;		/* the datagram vouched for: RTP SSRC, host order */
	__u16 udp_len;		/* UDP length, host order */
	__u16 udp_check;	/* UDP checksum field as received, network order */
};

/* Names of the pinned objects under /sys/fs/bpf/groupcast/IFACE/. */
#define GC_PIN_ROOT		"/sys/fs/bpf/groupcast"
#define GC_PIN_ROUTES		"routes"
#define GC_PIN_STATS		"stats"
#define GC_PIN_DELAY		"delay"		/* struct gc_delay_hist, per CPU */
#define GC_PIN_MEDIA		"media"		/* SSRC -> struct gc_media_counters, per CPU */
#define GC_PIN_CONFIG		"config"	/* the programs' .rodata: struct gc_config */
#define GC_PIN_STATE		"state"		/* struct gc_loader_state */
#define GC_PIN_LOCAL		"local"		/* struct gc_local_addr -> __u8 */
#define GC_PIN_PROG_XDP		"prog_xdp"
#define GC_PIN_PROG_TC		"prog_tc"

/* What the loader remembers about an attachment (array map, one entry;
 * never touched by the BPF programs). @listen: the one address the SFU's
 * media socket is bound to, the only destination served (family 0: a
 * wildcard socket, every address of the interface and its VLAN devices). */
struct gc_loader_state {
	__u32 ifindex;
	__u32 xdp_flags;	/* XDP_FLAGS_* used to attach */
	__u32 tc_handle;
	__u32 tc_priority;
	__u32 created_clsact;	/* 1: detach removes the clsact qdisc it created */
	__u32 reserved;
	struct gc_local_addr listen;
};

/* The TC filter's handle and priority on the clsact ingress hook. */
#define GC_TC_HANDLE		0x6763	/* "gc" */
#define GC_TC_PRIORITY		0x6763

/*
 * The AF_XDP ring backend (bpf/ring.bpf.c, bpf/ring/ring.c):
 * an XDP program that moves SFU-port frames to the AF_XDP socket of their
 * receive queue (the XSKMAP, keyed by queue index) and passes all other
 * traffic to the host stack.
 */

/* Entries of the XSKMAP: receive queues one interface may bind. */
#define GC_RING_MAX_QUEUES	64

/* The ring's XDP program as the kernel names it (its function in
 * bpf/ring.bpf.c; at most 15 characters): how `groupcast xdp detach` tells
 * it from programs that are not ours, the ring's attachment being unpinned. */
#define GC_RING_PROG_NAME	"groupcast_ring"

/*
 * Read-only configuration of the ring program (its .rodata, set before load).
 * @port:      the SFU's media UDP port, host byte order.
 * @max_frame: the longest frame a UMEM frame holds; longer ones to the media
 *             port are dropped here and counted (GC_RING_STAT_TOO_BIG), where
 *             the socket would have dropped them uncounted.
 */
struct gc_ring_config {
	__u32 abi_version;	/* GC_ABI_VERSION */
	__u16 port;
	__u16 max_frame;
};

/* Per-CPU counters of the ring program, indexed by enum gc_ring_stat. */
enum gc_ring_stat {
	GC_RING_STAT_TO_PORT = 0,	/* frames to the SFU media port */
	GC_RING_STAT_REDIRECTED,	/* of those: moved to an AF_XDP socket */
	GC_RING_STAT_NO_SOCKET,		/* of those: no socket on their queue, passed to the stack */
	GC_RING_STAT_TOO_BIG,		/* of those: longer than max_frame, dropped */
	GC_RING_STAT_MAX
};

#define GC_RING_STAT_NAMES { "to_port", "redirected", "no_socket", "too_big" }

#endif /* GROUPCAST_LAYOUT_H */
