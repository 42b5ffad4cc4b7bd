// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only BPF LSM program for group_test's LSM tests: the socket_sendmsg
 * hook refuses (-EPERM) every sendmsg of the one process whose tgid is in
 * sg_denied_tgid[0] (0: nobody), as an AppArmor or SELinux policy would,
 * and every sendmsg to the UDP port in sg_denied_port[0] (host order; 0:
 * none), as a policy that judges each destination (Smack, TOMOYO) would.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define EPERM 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sg_denied_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sg_denied_port SEC(".maps");

/* The destination port of a sendmsg: sin_port and sin6_port are both at offset 2. */
static __u16 sg_dest_port(void *msg)
{
	void *name = NULL;	/* struct msghdr's first field, msg_name */
	__u16 port = 0;

	if (bpf_probe_read_kernel(&name, sizeof(name), msg) || !name ||
	    bpf_probe_read_kernel(&port, sizeof(port), name + 2))
		return 0;
	return bpf_ntohs(port);
}

SEC("lsm/socket_sendmsg")
int sg_deny_sendmsg(unsigned long long *ctx)
{
	__u32 key = 0, *tgid = bpf_map_lookup_elem(&sg_denied_tgid, &key);
	__u32 *port = bpf_map_lookup_elem(&sg_denied_port, &key);

	if (tgid && *tgid && *tgid == bpf_get_current_pid_tgid() >> 32)
		return -EPERM;
	if (port && *port && *port == sg_dest_port((void *)ctx[1]))
		return -EPERM;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
