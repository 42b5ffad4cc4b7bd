// Implementation of the C shims declared in include/CGroupUnicast.h.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "CGroupUnicast.h"

_Static_assert(sizeof(CGroupUnicast_mmsghdr) == sizeof(struct mmsghdr),
	       "CGroupUnicast_mmsghdr must match struct mmsghdr");
_Static_assert(offsetof(CGroupUnicast_mmsghdr, msg_hdr) == offsetof(struct mmsghdr, msg_hdr),
	       "msg_hdr offset");
_Static_assert(offsetof(CGroupUnicast_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len),
	       "msg_len offset");
_Static_assert(sizeof(struct sendgroup_recipient) == SENDGROUP_RECIPIENT_SIZE_LATEST,
	       "struct sendgroup_recipient size");
_Static_assert(sizeof(struct sendgroup_send_args) == SENDGROUP_SEND_ARGS_SIZE_LATEST,
	       "struct sendgroup_send_args size");
_Static_assert(sizeof(struct sendgroup_info) == SENDGROUP_INFO_SIZE_VER0,
	       "struct sendgroup_info size");

_Static_assert(sizeof(struct sendgroup_group_create_args) == SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0,
	       "struct sendgroup_group_create_args size");
_Static_assert(sizeof(struct sendgroup_member) == SENDGROUP_MEMBER_SIZE_VER0,
	       "struct sendgroup_member size");
_Static_assert(sizeof(struct sendgroup_members_args) == SENDGROUP_MEMBERS_ARGS_SIZE_VER0,
	       "struct sendgroup_members_args size");
_Static_assert(sizeof(struct sendgroup_list_args) == SENDGROUP_LIST_ARGS_SIZE_VER0,
	       "struct sendgroup_list_args size");
_Static_assert(sizeof(struct sendgroup_payload) == 16, "struct sendgroup_payload size");
_Static_assert(sizeof(struct sendgroup_failure) == 16, "struct sendgroup_failure size");
_Static_assert(sizeof(struct sendgroup_group_send_args) == SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0,
	       "struct sendgroup_group_send_args size");

int CGroupUnicast_sendgroup_send(int device_fd, struct sendgroup_send_args *args)
{
	return ioctl(device_fd, SENDGROUP_IOC_SEND, args);
}

int CGroupUnicast_sendgroup_info(int device_fd, struct sendgroup_info *info)
{
	return ioctl(device_fd, SENDGROUP_IOC_INFO, info);
}

int CGroupUnicast_sendgroup_group_create(int device_fd, struct sendgroup_group_create_args *args)
{
	return ioctl(device_fd, SENDGROUP_IOC_GROUP_CREATE, args);
}

int CGroupUnicast_sendgroup_group_add(int group_fd, struct sendgroup_members_args *args)
{
	return ioctl(group_fd, SENDGROUP_GROUP_IOC_ADD, args);
}

int CGroupUnicast_sendgroup_group_update(int group_fd, struct sendgroup_members_args *args)
{
	return ioctl(group_fd, SENDGROUP_GROUP_IOC_UPDATE, args);
}

int CGroupUnicast_sendgroup_group_remove(int group_fd, struct sendgroup_members_args *args)
{
	return ioctl(group_fd, SENDGROUP_GROUP_IOC_REMOVE, args);
}

int CGroupUnicast_sendgroup_group_list(int group_fd, struct sendgroup_list_args *args)
{
	return ioctl(group_fd, SENDGROUP_GROUP_IOC_LIST, args);
}

int CGroupUnicast_sendgroup_group_send(int group_fd, struct sendgroup_group_send_args *args)
{
	return ioctl(group_fd, SENDGROUP_GROUP_IOC_SEND, args);
}

int CGroupUnicast_sendgroup_recipient_set_address(struct sendgroup_recipient *recipient,
						 const struct sockaddr *address)
{
	switch (address->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)address;

		recipient->family = AF_INET;
		recipient->port = ntohs(in->sin_port);
		memset(recipient->addr, 0, sizeof(recipient->addr));
		memcpy(recipient->addr, &in->sin_addr, sizeof(in->sin_addr));
		recipient->scope_id = 0;
		recipient->flowinfo = 0;
		return 0;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;

		recipient->family = AF_INET6;
		recipient->port = ntohs(in6->sin6_port);
		memcpy(recipient->addr, &in6->sin6_addr, sizeof(in6->sin6_addr));
		recipient->scope_id = in6->sin6_scope_id;
		recipient->flowinfo = in6->sin6_flowinfo;
		return 0;
	}
	default:
		return -1;
	}
}

int CGroupUnicast_sendmmsg(int sockfd, CGroupUnicast_mmsghdr *msgvec, unsigned int vlen, int flags)
{
	return sendmmsg(sockfd, (struct mmsghdr *)msgvec, vlen, flags);
}

int CGroupUnicast_recvmmsg(int sockfd, CGroupUnicast_mmsghdr *msgvec, unsigned int vlen, int flags,
			   struct timespec *timeout)
{
	return recvmmsg(sockfd, (struct mmsghdr *)msgvec, vlen, flags, timeout);
}

struct cmsghdr *CGroupUnicast_CMSG_FIRSTHDR(const struct msghdr *msg)
{
	return CMSG_FIRSTHDR(msg);
}

struct cmsghdr *CGroupUnicast_CMSG_NXTHDR(struct msghdr *msg, struct cmsghdr *cmsg)
{
	return CMSG_NXTHDR(msg, cmsg);
}

const void *CGroupUnicast_CMSG_DATA(const struct cmsghdr *cmsg)
{
	return CMSG_DATA(cmsg);
}

size_t CGroupUnicast_CMSG_LEN(size_t payload)
{
	return CMSG_LEN(payload);
}

size_t CGroupUnicast_CMSG_SPACE(size_t payload)
{
	return CMSG_SPACE(payload);
}

int CGroupUnicast_pktinfo_destination(const struct cmsghdr *cmsg, uint16_t port,
				      struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO &&
	    cmsg->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
		struct in_pktinfo info;
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		memcpy(&info, CMSG_DATA(cmsg), sizeof(info));
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr = info.ipi_addr;
		return 1;
	}
	if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO &&
	    cmsg->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
		struct in6_pktinfo info;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

		memcpy(&info, CMSG_DATA(cmsg), sizeof(info));
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		in6->sin6_addr = info.ipi6_addr;
		if (IN6_IS_ADDR_LINKLOCAL(&info.ipi6_addr))
			in6->sin6_scope_id = info.ipi6_ifindex;
		return 1;
	}
	return 0;
}

int CGroupUnicast_set_receive_pktinfo(int sockfd, int family, int enable)
{
	if (family == AF_INET6)
		return setsockopt(sockfd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &enable, sizeof(enable));
	return setsockopt(sockfd, IPPROTO_IP, IP_PKTINFO, &enable, sizeof(enable));
}

size_t CGroupUnicast_pktinfo_space(void)
{
	size_t in = CMSG_SPACE(sizeof(struct in_pktinfo));
	size_t in6 = CMSG_SPACE(sizeof(struct in6_pktinfo));

	return in > in6 ? in : in6;
}

void CGroupUnicast_in6_addr_get(const struct in6_addr *address, uint8_t bytes[16])
{
	memcpy(bytes, address, 16);
}

void CGroupUnicast_in6_addr_set(struct in6_addr *address, const uint8_t bytes[16])
{
	memcpy(address, bytes, 16);
}

const char *CGroupUnicast_errno_name(int error)
{
	return strerrorname_np(error);
}
