// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of an in-kernel copy (sendbench's clone-floor method): the
 * cheapest way the kernel can put one more copy of a frame on a device, an
 * skb clone handed to the device's egress by bpf_clone_redirect(), the
 * mechanism of the fast path (bpf/). sendbench runs it with
 * BPF_PROG_TEST_RUN on a prepared UDP frame, once per group send:
 * cb[0] = copies, cb[1] = ifindex of the device they go to. Returns the
 * number of clones that failed.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MAX_COPIES 1024	/* sendbench's MAX_GROUP */

SEC("tc")
int clone_floor(struct __sk_buff *skb)
{
	__u32 copies = skb->cb[0], ifindex = skb->cb[1], failed = 0;

	for (__u32 i = 0; i < MAX_COPIES && i < copies; i++)
		if (bpf_clone_redirect(skb, ifindex, 0))
			failed++;
	return failed;
}

char LICENSE[] SEC("license") = "GPL";
