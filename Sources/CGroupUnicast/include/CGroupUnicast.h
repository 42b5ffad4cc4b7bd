// C shims for the GroupUnicast Swift library.
//
// Only what Swift cannot reach directly lives here: variadic ioctl(2), the
// ioctl numbers (function-like _IOW/_IOWR macros), GNU-only declarations
// (sendmmsg, recvmmsg, struct mmsghdr, strerrorname_np), the CMSG_* macros and
// the in6_addr union. Every name is prefixed with CGroupUnicast_.
#ifndef C_GROUP_UNICAST_H
#define C_GROUP_UNICAST_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

// The one copy of the /dev/sendgroup layout, shared with the kernel module.
// Included by relative path so that `swift build` works from a fresh clone
// without copying the header or passing unsafe flags.
#include "../../../kmod/include/uapi/linux/sendgroup.h"

// MARK: /dev/sendgroup

// SENDGROUP_IOC_SEND and SENDGROUP_IOC_INFO are built with _IOW/_IOWR, which
// Swift cannot import, and ioctl(2) is variadic, which Swift cannot call.
// Returns what ioctl(2) returns; errno is left for the caller.
int CGroupUnicast_sendgroup_send(int device_fd, struct sendgroup_send_args *args);
int CGroupUnicast_sendgroup_info(int device_fd, struct sendgroup_info *info);

// Kernel-resident groups (SENDGROUP_FEATURE_GROUPS). The ioctl numbers are
// _IOW/_IOWR expressions Swift cannot import and ioctl(2) is variadic, so each
// command gets a wrapper. Each returns what ioctl(2) returns (a new group fd
// for GROUP_CREATE, the ids written for LIST, the datagrams sent for SEND);
// errno is left for the caller.
//
// GROUP_CREATE runs on /dev/sendgroup and binds a group to a UDP socket.
int CGroupUnicast_sendgroup_group_create(int device_fd, struct sendgroup_group_create_args *args);
// ADD, UPDATE and REMOVE run on a group fd; all or nothing.
int CGroupUnicast_sendgroup_group_add(int group_fd, struct sendgroup_members_args *args);
int CGroupUnicast_sendgroup_group_update(int group_fd, struct sendgroup_members_args *args);
int CGroupUnicast_sendgroup_group_remove(int group_fd, struct sendgroup_members_args *args);
// LIST writes the member count and up to args->capacity ids, ascending.
int CGroupUnicast_sendgroup_group_list(int group_fd, struct sendgroup_list_args *args);
// SEND sends every payload to every member and reports failures.
int CGroupUnicast_sendgroup_group_send(int group_fd, struct sendgroup_group_send_args *args);

// SENDGROUP_MSG_FLAGS is a parenthesised expression, which Swift does not import.
static const unsigned int CGroupUnicast_SENDGROUP_MSG_FLAGS = SENDGROUP_MSG_FLAGS;

// Fill one recipient entry from a socket address (port to host order, address
// bytes in network order, scope id and flow info for IPv6). Swift would have
// to reach through the in6_addr union and byte-swap by hand. Returns 0, or -1
// when the family is neither AF_INET nor AF_INET6.
int CGroupUnicast_sendgroup_recipient_set_address(struct sendgroup_recipient *recipient,
						 const struct sockaddr *address);

// MARK: sendmmsg / recvmmsg

// struct mmsghdr and sendmmsg/recvmmsg are declared only under _GNU_SOURCE,
// which Swift's Glibc module does not define. This struct has the same layout
// (checked with static assertions in the .c file).
typedef struct {
	struct msghdr msg_hdr;
	unsigned int msg_len;
} CGroupUnicast_mmsghdr;

int CGroupUnicast_sendmmsg(int sockfd, CGroupUnicast_mmsghdr *msgvec, unsigned int vlen, int flags);
int CGroupUnicast_recvmmsg(int sockfd, CGroupUnicast_mmsghdr *msgvec, unsigned int vlen, int flags,
			   struct timespec *timeout);

// MARK: Control messages

// CMSG_FIRSTHDR, CMSG_NXTHDR, CMSG_DATA, CMSG_LEN and CMSG_SPACE are macros
// that Swift cannot import.
struct cmsghdr *CGroupUnicast_CMSG_FIRSTHDR(const struct msghdr *msg);
struct cmsghdr *CGroupUnicast_CMSG_NXTHDR(struct msghdr *msg, struct cmsghdr *cmsg);
const void *CGroupUnicast_CMSG_DATA(const struct cmsghdr *cmsg);
size_t CGroupUnicast_CMSG_LEN(size_t payload);
size_t CGroupUnicast_CMSG_SPACE(size_t payload);

// The local address a datagram was sent to, from an IP_PKTINFO or
// IPV6_PKTINFO control message (struct in_pktinfo is GNU-only, and
// in6_pktinfo holds the in6_addr union). `port` is the socket's bound port in
// host order. Returns 1 and fills `out` when `cmsg` is such a message, else 0.
int CGroupUnicast_pktinfo_destination(const struct cmsghdr *cmsg, uint16_t port,
				      struct sockaddr_storage *out);

// Ask for IP_PKTINFO (AF_INET) or IPV6_RECVPKTINFO (AF_INET6) control messages;
// the option names and struct sizes are GNU-only. Returns what setsockopt(2) returns.
int CGroupUnicast_set_receive_pktinfo(int sockfd, int family, int enable);

// Control buffer bytes per datagram that hold one IP_PKTINFO or IPV6_PKTINFO message.
size_t CGroupUnicast_pktinfo_space(void);

// MARK: sockaddr

// The address bytes of an in6_addr sit behind a union that Swift imports
// awkwardly; copy them as 16 plain bytes.
void CGroupUnicast_in6_addr_get(const struct in6_addr *address, uint8_t bytes[16]);
void CGroupUnicast_in6_addr_set(struct in6_addr *address, const uint8_t bytes[16]);

// MARK: errno

// The symbolic name of an errno value ("EMSGSIZE"), or NULL when unknown.
// strerrorname_np is a GNU extension invisible to Swift.
const char *CGroupUnicast_errno_name(int error);

#endif // C_GROUP_UNICAST_H
