// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ring.bpf.c - the front of the AF_XDP ring backend (Docs/ring.md).
 *
 * netmap's model, in mainline Linux: the NIC's receive queue feeds user space
 * through a shared ring (the AF_XDP socket's RX ring), everything not meant
 * for the SFU goes on to the host stack (netmap's host RX ring).  This
 * program makes that split on each receive queue: frames whose UDP
 * destination is the SFU media port go to the AF_XDP socket bound to the
 * queue they arrived on (XSKMAP, keyed by rx_queue_index); everything else,
 * the SFU's control traffic included, is XDP_PASS.
 *
 * Malformed frames to the media port are redirected too: user space runs the
 * same parser (parsing.h) and counts them under the same reasons as the
 * socket backends, so one set of counters describes the SFU.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "groupcast_layout.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct gc_ring_config gc_ring_cfg = {
	.abi_version = GC_ABI_VERSION,
	.port = 7002,
	.max_frame = 1792,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, GC_RING_MAX_QUEUES);
	__type(key, __u32);		/* receive queue index */
	__type(value, __u32);		/* AF_XDP socket fd (set by the loader) */
} gc_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GC_RING_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gc_ring_stats SEC(".maps");

static __always_inline void gc_ring_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&gc_ring_stats, &stat);

	if (v)
		*v += 1;
}

SEC("xdp")
int groupcast_ring(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct gc_pkt pkt = {};
	long action;

	gc_parse(data, data_end, bpf_htons(gc_ring_cfg.port), &pkt, ctx, GC_CTX_XDP);
	if (!pkt.to_port)
		return XDP_PASS;
	gc_ring_count(GC_RING_STAT_TO_PORT);
	if (data_end - data > gc_ring_cfg.max_frame) {
		gc_ring_count(GC_RING_STAT_TOO_BIG);
		return XDP_DROP;
	}
	/* XDP_PASS in the flags: no socket on this queue -> the host stack. */
	action = bpf_redirect_map(&gc_xsks, ctx->rx_queue_index, XDP_PASS);
	gc_ring_count(action == XDP_REDIRECT ? GC_RING_STAT_REDIRECTED : GC_RING_STAT_NO_SOCKET);
	return action;
}
