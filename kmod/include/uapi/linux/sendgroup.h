/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sendgroup: send one shared UDP payload to many receivers in one call.
 *
 * The group-unicast call of Lahav et al., "Group Unicast for the Real World"
 * (NOSSDAV'08), as an ioctl on the misc device /dev/sendgroup. The shared
 * payload is copied into the kernel once per call; every receiver's datagram
 * references those pages and carries its own prepend and append bytes.
 *
 * This header is the one copy of the layout: the module, its tests and the
 * Swift package all include it.
 */
#ifndef _UAPI_LINUX_SENDGROUP_H
#define _UAPI_LINUX_SENDGROUP_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SENDGROUP_DEVICE_PATH		"/dev/sendgroup"

/*
 * Bumped when a command or field is added; reported by SENDGROUP_IOC_INFO.
 * 1: SENDGROUP_IOC_SEND, SENDGROUP_IOC_INFO.
 * 2: kernel-resident groups (SENDGROUP_IOC_GROUP_CREATE, SENDGROUP_GROUP_IOC_*).
 */
#define SENDGROUP_ABI_VERSION		2

/* Most recipients in one SENDGROUP_IOC_SEND (as sendmmsg's UIO_MAXIOV). */
#define SENDGROUP_MAX_RECIPIENTS	1024
/* Largest UDP payload over IPv4: 65535 - 20 (IP) - 8 (UDP). */
#define SENDGROUP_MAX_DATAGRAM		65507

/*
 * One receiver of a group send.
 *
 * @family:      AF_INET or AF_INET6. Any other value fails this recipient
 *               with -EAFNOSUPPORT, as sendmsg() would.
 * @port:        destination UDP port in host byte order (0..65535).
 * @addr:        destination address in network byte order: IPv4 in the first
 *               4 bytes (rest zero), IPv6 in all 16.
 * @scope_id:    IPv6 scope (interface index) for link-local destinations;
 *               0 otherwise and always 0 for IPv4.
 * @flowinfo:    IPv6 flow label in network byte order (sin6_flowinfo); 0 for IPv4.
 * @prepend:     pointer to bytes placed before the shared payload, or 0.
 * @append:      pointer to bytes placed after the shared payload, or 0.
 * @prepend_len: length of @prepend in bytes.
 * @append_len:  length of @append in bytes.
 *
 * A @port over 65535, or an IPv4 entry with bytes set past its address, a
 * @scope_id or a @flowinfo, fails the whole call with EINVAL before anything
 * is sent. In a one-shot send, @prepend and @append are read while that
 * recipient's datagram is built: an unreadable one fails that recipient with
 * -EFAULT. A datagram whose prepend, payload and append exceed 65535 bytes
 * fails with -EMSGSIZE (that recipient or member only), as does anything
 * else sendmsg() would refuse as too large.
 *
 * Entries are versioned by size (struct sendgroup_send_args.recipient_size):
 * a caller may pass larger entries as long as the bytes this kernel does not
 * know are zero (-E2BIG otherwise). An entry size below
 * SENDGROUP_RECIPIENT_SIZE_VER0 is -EINVAL, one over a page -E2BIG.
 */
struct sendgroup_recipient {
	__u32 family;
	__u32 port;
	__u8  addr[16];
	__u32 scope_id;
	__u32 flowinfo;
	__u64 prepend;
	__u64 append;
	__u32 prepend_len;
	__u32 append_len;
};

#define SENDGROUP_RECIPIENT_SIZE_VER0	56	/* sizeof first published struct */
#define SENDGROUP_RECIPIENT_SIZE_LATEST	SENDGROUP_RECIPIENT_SIZE_VER0

/*
 * Arguments of SENDGROUP_IOC_SEND, versioned by @size (openat2 rules):
 * a @size below SENDGROUP_SEND_ARGS_SIZE_VER0 is -EINVAL, a larger @size
 * whose unknown tail is not all zero is -E2BIG.
 *
 * @size:            sizeof(struct sendgroup_send_args) as the caller knows it.
 * @fd:              the caller's UDP socket (AF_INET or AF_INET6, SOCK_DGRAM):
 *                   EBADF or ENOTSOCK when it is none, EPROTONOSUPPORT for
 *                   any other socket, EINVAL while it is corked (UDP_CORK,
 *                   or a pending MSG_MORE datagram).
 * @flags:           SENDGROUP_SEND_* flags; none are defined yet: must be 0
 *                   (EINVAL).
 * @msg_flags:       sendmsg() flags applied to every datagram; only those in
 *                   SENDGROUP_MSG_FLAGS are accepted, others are EINVAL
 *                   (MSG_MORE among them: a group send never corks the socket).
 * @shared:          pointer to the shared payload (may be 0 when @shared_len is 0).
 * @shared_len:      bytes of shared payload, at most SENDGROUP_MAX_DATAGRAM
 *                   (EMSGSIZE).
 * @recipient_size:  sizeof(struct sendgroup_recipient) as the caller knows it.
 * @recipients:      pointer to @recipient_count entries of @recipient_size bytes.
 * @recipient_count: 1..SENDGROUP_MAX_RECIPIENTS (0 is EINVAL, more E2BIG).
 * @reserved:        must be 0 (EINVAL).
 * @results:         optional pointer to @recipient_count __s32 slots, or 0;
 *                   each receives 0 or the negative errno of that recipient.
 *                   It must be writable when the call starts (EFAULT before
 *                   anything is sent); if it stops being writable while the
 *                   call runs, the results are lost and the call still
 *                   returns the number sent, never EFAULT after sending.
 *
 * The argument struct, @recipients and @shared are copied and checked, and
 * @results is checked writable, before the first datagram: a call refused
 * with one of the errors above, EFAULT (one of them unreadable, or @results
 * not writable) or ENOMEM sends nothing.
 *
 * Returns the number of recipients whose datagram was sent (0 when every
 * one failed: @results says why), or a negative errno when nothing was
 * sent: a refused call, EINTR (below), or EFAULT when @results could not be
 * written back. Memory the call needs for @recipients, @results and the
 * shared payload's pages is charged to the caller's memory cgroup: ENOMEM
 * at its limit.
 *
 * Signals: a datagram waiting for send-buffer space (a blocking socket: no
 * MSG_DONTWAIT) is interrupted by any signal the caller does not block or
 * ignore, as sendmsg() is; a fatal signal also stops the call between
 * recipients. Either way the call stops there and is not restarted: the
 * interrupted recipient and every later one get -EINTR in @results, and the
 * call returns the number sent, or -EINTR when that is 0 (nothing was sent:
 * retrying the whole call is safe). A non-fatal signal that arrives between
 * datagrams stays pending until the call returns: the call goes on, and the
 * first later datagram that has to wait for buffer space is interrupted at
 * once.
 *
 * Waits: a blocking call waits for send-buffer space at most one
 * SO_SNDTIMEO in all, not one per datagram: the datagram whose wait timed
 * out gets -EAGAIN and every later one is tried without waiting (-EAGAIN
 * while the buffer stays full). Without SO_SNDTIMEO only a signal ends a
 * wait.
 */
struct sendgroup_send_args {
	__u32 size;
	__u32 fd;
	__u32 flags;
	__u32 msg_flags;
	__u64 shared;
	__u32 shared_len;
	__u32 recipient_size;
	__u64 recipients;
	__u32 recipient_count;
	__u32 reserved;
	__u64 results;
};

#define SENDGROUP_SEND_ARGS_SIZE_VER0	56	/* sizeof first published struct */
#define SENDGROUP_SEND_ARGS_SIZE_LATEST	SENDGROUP_SEND_ARGS_SIZE_VER0

/* sendmsg() flags a group send accepts: MSG_DONTWAIT | MSG_DONTROUTE | MSG_CONFIRM | MSG_NOSIGNAL. */
#define SENDGROUP_MSG_FLAGS		(0x40 | 0x4 | 0x800 | 0x4000)

/* Features reported by SENDGROUP_IOC_INFO. */
/* Shared payload pages are referenced by every datagram, not copied per recipient. */
#define SENDGROUP_FEATURE_SHARED_PAGES	(1ULL << 0)
/* Kernel-resident groups: SENDGROUP_IOC_GROUP_CREATE and the group fd's ioctls. */
#define SENDGROUP_FEATURE_GROUPS	(1ULL << 1)
/*
 * Datagrams are built by the module and handed to the IP layer, with a
 * cached route per group member, instead of one sendmsg() each; off when
 * the module's fast_path parameter is 0. The LSM's socket_sendmsg hook is
 * asked about every datagram, with its destination, and a refusal fails that
 * datagram with the LSM's errno, as sendmsg() would (see the module's
 * documentation for what differs).
 */
#define SENDGROUP_FEATURE_DIRECT_XMIT	(1ULL << 2)

/*
 * Result of SENDGROUP_IOC_INFO, versioned by @size like the send arguments:
 * the caller sets @size, the kernel fills what both know and zeroes the rest.
 */
struct sendgroup_info {
	__u32 size;
	__u32 abi_version;
	__u32 max_recipients;
	__u32 max_datagram;
	__u32 recipient_size;	/* SENDGROUP_RECIPIENT_SIZE_LATEST of the module */
	__u32 send_args_size;	/* SENDGROUP_SEND_ARGS_SIZE_LATEST of the module */
	__u64 features;		/* SENDGROUP_FEATURE_* */
};

#define SENDGROUP_INFO_SIZE_VER0	32

/*
 * Kernel-resident groups.
 *
 * SENDGROUP_IOC_GROUP_CREATE on /dev/sendgroup returns a new file descriptor
 * (O_CLOEXEC) for a group bound to a UDP socket (checked as @fd of a
 * one-shot send: at creation and again by every group send). The group
 * holds its own reference to that socket: closing the caller's socket fd
 * does not stop the group; closing the group fd frees the group and drops
 * the reference.
 * Members live in the kernel; a group send passes only the payloads, so the
 * recipient array is not copied from user space on every call.
 */
#define SENDGROUP_MAX_MEMBERS		65536	/* per group */
#define SENDGROUP_MAX_MEMBER_PRIVATE	1024	/* prepend_len + append_len per member */
#define SENDGROUP_MAX_PAYLOADS		64	/* payloads per SENDGROUP_GROUP_IOC_SEND */

/*
 * @size:     sizeof(struct sendgroup_group_create_args) as the caller knows it.
 * @fd:       the UDP socket the group sends through.
 * @flags:    none defined yet: must be 0.
 * @reserved: must be 0.
 */
struct sendgroup_group_create_args {
	__u32 size;
	__u32 fd;
	__u32 flags;
	__u32 reserved;
};

#define SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0	16

/*
 * A member: a caller-chosen id, unique in its group, and its destination and
 * private bytes as for a one-shot send. Prepend and append are copied into
 * the kernel when the member is added or updated (at most
 * SENDGROUP_MAX_MEMBER_PRIVATE bytes together).
 * Ids index a radix tree (xarray), so dense ids cost least: on 6.12 a group
 * of ids 1..N holds about 130 bytes of tree and member per member, one of
 * random 64-bit ids about 5 KiB (the tree's inner nodes; charged to the
 * caller's memory cgroup as the members are), and ADD and REMOVE take
 * about 10 times as long. Reuse the ids of removed members.
 */
struct sendgroup_member {
	__u64 id;
	struct sendgroup_recipient recipient;
};

#define SENDGROUP_MEMBER_SIZE_VER0	64

/*
 * SENDGROUP_GROUP_IOC_ADD, _UPDATE: @members points to @count entries of
 * @member_size bytes (struct sendgroup_member, versioned by size like
 * recipients). SENDGROUP_GROUP_IOC_REMOVE: @members points to @count __u64
 * ids and @member_size must be 8 (EINVAL). Entries are checked as recipients
 * of a one-shot send (EINVAL, E2BIG), their prepend and append are copied in
 * (EFAULT when unreadable; EMSGSIZE past SENDGROUP_MAX_MEMBER_PRIVATE
 * together); ids must fit the kernel's unsigned long (on 32-bit kernels ADD
 * and UPDATE refuse others with EINVAL, REMOVE with ENOENT). Each call is
 * all or nothing: EINVAL if an id repeats in the call; ADD fails with EEXIST
 * if an id is already a member, UPDATE and REMOVE with ENOENT if one is not;
 * E2BIG for more than SENDGROUP_MAX_MEMBERS entries, ENOSPC when the group
 * would hold more; ENOMEM when the caller's memory cgroup is at its limit
 * (members and their private bytes are charged to it). When REMOVE returns,
 * no send will reach the removed members any more; the same holds for the
 * old bytes after UPDATE. REMOVE and UPDATE wait for sends on the same group
 * that are running (a send on a blocking socket may wait for buffer space);
 * ADD waits for no send, only behind a REMOVE or UPDATE of the same group
 * that does. All three are killable (EINTR), and never wait for another
 * group.
 */
struct sendgroup_members_args {
	__u32 size;
	__u32 flags;		/* none defined yet: must be 0 */
	__u64 members;
	__u32 count;		/* 1..SENDGROUP_MAX_MEMBERS */
	__u32 member_size;
};

#define SENDGROUP_MEMBERS_ARGS_SIZE_VER0	24

/*
 * SENDGROUP_GROUP_IOC_LIST: the kernel writes the group's member count to
 * @count and up to @capacity member ids, ascending, to @ids. Returns the
 * number of ids written.
 */
struct sendgroup_list_args {
	__u32 size;
	__u32 capacity;
	__u64 ids;
	__u32 count;		/* out */
	__u32 reserved;		/* must be 0 */
};

#define SENDGROUP_LIST_ARGS_SIZE_VER0	24

/* One payload of a group send. */
struct sendgroup_payload {
	__u64 data;
	__u32 len;		/* at most SENDGROUP_MAX_DATAGRAM */
	__u32 reserved;		/* must be 0 */
};

/* A member a datagram could not be sent to, and why. */
struct sendgroup_failure {
	__u64 member_id;
	__u32 payload_index;
	__s32 error;		/* negative errno, as sendmsg() would return */
};

/*
 * SENDGROUP_GROUP_IOC_SEND: send each of @payload_count payloads (in order)
 * to every member (in ascending id order). Returns the number of datagrams
 * sent. Failures never stop the call; up to @failure_capacity of them are
 * written to @failures, and @failure_count receives how many there were in
 * all (which may exceed the capacity).
 *
 * @failures is optional: 0 means no records, whatever @failure_capacity
 * says; @failure_count is reported either way. Before the first datagram
 * the kernel writes 0 to @failure_count and clears the first
 * @failure_capacity records (at most SENDGROUP_MAX_MEMBERS * @payload_count,
 * as many as one call can fail): memory that cannot be written fails the
 * call with EFAULT and nothing is sent; so do an unreadable or invalid
 * payload (EFAULT, EINVAL, EMSGSIZE), a @payload_count of 0 (EINVAL) or over
 * SENDGROUP_MAX_PAYLOADS (E2BIG) and ENOMEM. Once datagrams have left, the
 * call returns their number; a record it can no longer write (the caller
 * unmapped or protected the memory during the call) is lost.
 *
 * Signals and waits: as SENDGROUP_IOC_SEND. The interrupted datagram and every one the
 * call did not attempt are failure records saying -EINTR, so the datagrams
 * sent plus @failure_count cover every member and payload the call walked;
 * the call returns the number sent, or -EINTR when that is 0.
 */
struct sendgroup_group_send_args {
	__u32 size;
	__u32 flags;		/* none defined yet: must be 0 */
	__u32 msg_flags;	/* as struct sendgroup_send_args */
	__u32 payload_count;	/* 1..SENDGROUP_MAX_PAYLOADS */
	__u64 payloads;		/* struct sendgroup_payload[payload_count] */
	__u64 failures;		/* optional: struct sendgroup_failure[failure_capacity] */
	__u32 failure_capacity;
	__u32 failure_count;	/* out */
};

#define SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0	40

#define SENDGROUP_IOC_MAGIC		0xB9
/* On /dev/sendgroup. */
#define SENDGROUP_IOC_SEND		_IOW(SENDGROUP_IOC_MAGIC, 0x00, struct sendgroup_send_args)
#define SENDGROUP_IOC_INFO		_IOWR(SENDGROUP_IOC_MAGIC, 0x01, struct sendgroup_info)
#define SENDGROUP_IOC_GROUP_CREATE	_IOW(SENDGROUP_IOC_MAGIC, 0x02, struct sendgroup_group_create_args)
/* On a group fd. */
#define SENDGROUP_GROUP_IOC_ADD		_IOW(SENDGROUP_IOC_MAGIC, 0x10, struct sendgroup_members_args)
#define SENDGROUP_GROUP_IOC_UPDATE	_IOW(SENDGROUP_IOC_MAGIC, 0x11, struct sendgroup_members_args)
#define SENDGROUP_GROUP_IOC_REMOVE	_IOW(SENDGROUP_IOC_MAGIC, 0x12, struct sendgroup_members_args)
#define SENDGROUP_GROUP_IOC_LIST	_IOWR(SENDGROUP_IOC_MAGIC, 0x13, struct sendgroup_list_args)
#define SENDGROUP_GROUP_IOC_SEND	_IOWR(SENDGROUP_IOC_MAGIC, 0x14, struct sendgroup_group_send_args)

#endif /* _UAPI_LINUX_SENDGROUP_H */
