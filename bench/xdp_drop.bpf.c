// SPDX-License-Identifier: GPL-2.0
/* The benchmark's sink: drop every frame at the earliest hook, so receiving
 * costs next to nothing and no stack above XDP ever sees the traffic. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
