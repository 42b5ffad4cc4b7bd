// SPDX-License-Identifier: GPL-2.0
/* The benchmark's sinks. xdp_drop: drop every frame at the earliest hook, so
 * receiving costs next to nothing and no stack above XDP sees the traffic
 * (scripts/bench/send's default). tc_drop: the same at TC ingress, for
 * `scripts/bench/send --sink tc` (veth's XDP path copies each frame first). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("tc")
int tc_drop(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
