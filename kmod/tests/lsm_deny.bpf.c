// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only BPF LSM program for group_test's lsm fixture: the socket_sendmsg
 * hook refuses (-EPERM) every sendmsg of the one process whose tgid is in
 * sg_denied_tgid[0] (0: nobody), as an AppArmor or SELinux policy would.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EPERM 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sg_denied_tgid SEC(".maps");

SEC("lsm/socket_sendmsg")
int sg_deny_sendmsg(unsigned long long *ctx)
{
	__u32 key = 0, *tgid = bpf_map_lookup_elem(&sg_denied_tgid, &key);

	if (tgid && *tgid && *tgid == bpf_get_current_pid_tgid() >> 32)
		return -EPERM;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
