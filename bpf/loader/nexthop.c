// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nexthop.c - next-hop resolution over rtnetlink (include/groupcast_nexthop.h).
 *
 * Two requests, as `ip route get` and `ip neigh get` make them: the route
 * gives the egress interface, the gateway and the preferred source; the
 * neighbour table gives the gateway's (or the on-link destination's) MAC.
 * An egress interface that is an 802.1Q VLAN device is then asked for
 * (RTM_GETLINK, as `ip -d link show`): the data planes send through the
 * device below it with the VLAN's tag.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "groupcast_nexthop.h"
#include "internal.h"

#define NH_BUF_SIZE	8192

/* States holding a link-layer address (the kernel's NUD_VALID, not in uAPI). */
#define NH_NUD_VALID	(NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY)

struct nl_request {
	struct nlmsghdr nh;
	union {
		struct rtmsg rt;
		struct ndmsg nd;
		struct ifinfomsg ifi;
	};
	char attrs[64];
};

static void add_attr(struct nl_request *req, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	req->nh.nlmsg_len = NLMSG_ALIGN(req->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Send @req and wait for its answer: the first message of type @want (copied
 * to @buf, returns its length), or the kernel's error as a negative errno
 * (0 for an ACK without answer). */
static int nl_transact(struct nl_request *req, uint16_t want, char *buf, size_t size)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd, ret = -EPROTO;
	ssize_t n;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	req->nh.nlmsg_seq = 1;
	if (sendto(fd, req, req->nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		struct nlmsghdr *h;

		n = recv(fd, buf, size, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != req->nh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				ret = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? e->error : -EPROTO;
				goto out;
			}
			if (h->nlmsg_type == want) {
				memmove(buf, h, h->nlmsg_len);
				ret = (int)h->nlmsg_len;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
		}
	}
out:
	close(fd);
	return ret;
}

int gcfp_link_vlan(uint32_t ifindex, uint32_t *lower, uint16_t *vlan_id)
{
	char buf[NH_BUF_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nl_request req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.nh.nlmsg_type = RTM_GETLINK,
		.nh.nlmsg_flags = NLM_F_REQUEST,
		.ifi.ifi_family = AF_UNSPEC,
		.ifi.ifi_index = (int)ifindex,
	};
	struct rtattr *rta, *info, *data;
	int len, ilen, dlen, ret, is_vlan = 0, have_id = 0;
	uint16_t proto = htons(ETH_P_8021Q);

	ret = nl_transact(&req, RTM_NEWLINK, buf, sizeof(buf));
	if (ret <= 0)
		return ret ? ret : -ENODEV;
	*lower = 0;
	len = (int)((struct nlmsghdr *)buf)->nlmsg_len - NLMSG_LENGTH(sizeof(struct ifinfomsg));
	for (rta = IFLA_RTA(NLMSG_DATA((struct nlmsghdr *)buf)); RTA_OK(rta, len);
	     rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == IFLA_LINK && RTA_PAYLOAD(rta) >= 4)
			memcpy(lower, RTA_DATA(rta), 4);
		if (rta->rta_type != IFLA_LINKINFO)
			continue;
		ilen = RTA_PAYLOAD(rta);
		for (info = RTA_DATA(rta); RTA_OK(info, ilen); info = RTA_NEXT(info, ilen)) {
			if (info->rta_type == IFLA_INFO_KIND)
				is_vlan = RTA_PAYLOAD(info) >= 5 && !memcmp(RTA_DATA(info), "vlan", 5);
			if (info->rta_type != IFLA_INFO_DATA)
				continue;
			dlen = RTA_PAYLOAD(info);
			for (data = RTA_DATA(info); RTA_OK(data, dlen); data = RTA_NEXT(data, dlen)) {
				if (data->rta_type == IFLA_VLAN_ID && RTA_PAYLOAD(data) >= 2) {
					memcpy(vlan_id, RTA_DATA(data), 2);
					have_id = 1;
				} else if (data->rta_type == IFLA_VLAN_PROTOCOL && RTA_PAYLOAD(data) >= 2) {
					memcpy(&proto, RTA_DATA(data), 2);
				}
			}
		}
	}
	return is_vlan && have_id && *lower && proto == htons(ETH_P_8021Q);
}

static size_t addr_len(uint8_t family)
{
	return family == GC_FAMILY_IPV4 ? 4 : 16;
}

static const char *fmt_addr(uint8_t family, const void *addr, char *buf, size_t size)
{
	return inet_ntop(family == GC_FAMILY_IPV4 ? AF_INET : AF_INET6, addr, buf, size) ? buf : "?";
}

/* The interface's name, flags, link type and MAC (SIOCGIF*). */
static int link_info(uint32_t ifindex, struct gcfp_nexthop *out, short *ifflags,
		     unsigned short *link_type)
{
	struct ifreq ifr = {};
	int fd, ret = 0;

	if (!if_indextoname(ifindex, out->ifname))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", out->ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ret = -errno;
		goto out;
	}
	*ifflags = ifr.ifr_flags;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		ret = -errno;
		goto out;
	}
	*link_type = ifr.ifr_hwaddr.sa_family;
	if (*link_type == ARPHRD_ETHER)
		memcpy(out->src_mac, ifr.ifr_hwaddr.sa_data, 6);
out:
	close(fd);
	return ret;
}

static int route_lookup(uint8_t family, const void *addr, struct gcfp_nexthop *out,
			char *buf, struct gcfp_error *err)
{
	struct nl_request req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
		.nh.nlmsg_type = RTM_GETROUTE,
		.nh.nlmsg_flags = NLM_F_REQUEST,
		.rt.rtm_family = family == GC_FAMILY_IPV4 ? AF_INET : AF_INET6,
		.rt.rtm_dst_len = family == GC_FAMILY_IPV4 ? 32 : 128,
	};
	char text[INET6_ADDRSTRLEN];
	struct rtmsg *rt;
	struct rtattr *rta;
	int len, ret;

	add_attr(&req, RTA_DST, addr, addr_len(family));
	ret = nl_transact(&req, RTM_NEWROUTE, buf, NH_BUF_SIZE);
	fmt_addr(family, addr, text, sizeof(text));
	if (ret == -ENETUNREACH || ret == -EHOSTUNREACH || ret == -EACCES || ret == -EINVAL ||
	    ret == -ESRCH)
		return gcfp_fail(err, GCFP_ERR_UNREACHABLE, -ret, "no route to %s", text);
	if (ret <= 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, ret ? -ret : EPROTO,
				 "RTM_GETROUTE %s", text);
	rt = NLMSG_DATA((struct nlmsghdr *)buf);
	if (rt->rtm_type != RTN_UNICAST && rt->rtm_type != RTN_LOCAL)
		return gcfp_fail(err, GCFP_ERR_UNREACHABLE, EHOSTUNREACH,
				 "no route to %s (route type %u)", text, rt->rtm_type);
	if (rt->rtm_type == RTN_LOCAL)
		out->flags |= GCFP_NH_F_LOCAL;
	memcpy(out->via, addr, addr_len(family));
	len = RTM_PAYLOAD((struct nlmsghdr *)buf);
	for (rta = RTM_RTA(rt); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		switch (rta->rta_type) {
		case RTA_OIF:
			if (RTA_PAYLOAD(rta) >= 4)
				memcpy(&out->ifindex, RTA_DATA(rta), 4);
			break;
		case RTA_GATEWAY:
			if (RTA_PAYLOAD(rta) == addr_len(family)) {
				memcpy(out->via, RTA_DATA(rta), addr_len(family));
				out->flags |= GCFP_NH_F_GATEWAY;
			}
			break;
		case RTA_PREFSRC:
			if (RTA_PAYLOAD(rta) == addr_len(family))
				memcpy(out->src_addr, RTA_DATA(rta), addr_len(family));
			break;
		}
	}
	if (!out->ifindex)
		return gcfp_fail(err, GCFP_ERR_UNREACHABLE, EHOSTUNREACH,
				 "the route to %s names no output interface (multipath?)", text);
	return 0;
}

/* 0 with the MAC in @out, -ENOENT when there is no usable entry. */
static int neigh_lookup(struct gcfp_nexthop *out, char *buf)
{
	struct nl_request req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		.nh.nlmsg_type = RTM_GETNEIGH,
		.nh.nlmsg_flags = NLM_F_REQUEST,
		.nd.ndm_family = out->family == GC_FAMILY_IPV4 ? AF_INET : AF_INET6,
		.nd.ndm_ifindex = (int)out->ifindex,
	};
	struct ndmsg *nd;
	struct rtattr *rta;
	int len, ret, have_mac = 0;

	add_attr(&req, NDA_DST, out->via, addr_len(out->family));
	ret = nl_transact(&req, RTM_NEWNEIGH, buf, NH_BUF_SIZE);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ENOENT;
	nd = NLMSG_DATA((struct nlmsghdr *)buf);
	out->neigh_state = nd->ndm_state;
	len = (int)((struct nlmsghdr *)buf)->nlmsg_len - NLMSG_LENGTH(sizeof(*nd));
	for (rta = (struct rtattr *)((char *)nd + NLMSG_ALIGN(sizeof(*nd))); RTA_OK(rta, len);
	     rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == NDA_LLADDR && RTA_PAYLOAD(rta) == 6) {
			memcpy(out->dst_mac, RTA_DATA(rta), 6);
			have_mac = 1;
		}
	}
	/* STALE/DELAY/PROBE still hold the last confirmed address: use it (the
	 * caller re-resolves periodically); INCOMPLETE/FAILED have none. */
	return have_mac && (nd->ndm_state & NH_NUD_VALID) ? 0 : -ENOENT;
}

/* RTM_NEWNEIGH with NTF_USE: the kernel starts resolution as if a packet
 * were queued for the neighbour (`ip neigh replace ADDR dev DEV use`). */
static int neigh_probe(const struct gcfp_nexthop *nh, char *buf)
{
	struct nl_request req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		.nh.nlmsg_type = RTM_NEWNEIGH,
		.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
		.nd.ndm_family = nh->family == GC_FAMILY_IPV4 ? AF_INET : AF_INET6,
		.nd.ndm_ifindex = (int)nh->ifindex,
		.nd.ndm_state = NUD_NONE,
		.nd.ndm_flags = NTF_USE,
	};

	add_attr(&req, NDA_DST, nh->via, addr_len(nh->family));
	return nl_transact(&req, NLMSG_DONE, buf, NH_BUF_SIZE);
}

static int resolve(uint8_t family, const void *addr, uint32_t flags, struct gcfp_nexthop *out,
		   struct gcfp_error *err)
{
	char buf[NH_BUF_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	char text[INET6_ADDRSTRLEN], via[INET6_ADDRSTRLEN];
	unsigned short link_type = 0;
	short ifflags = 0;
	int ret;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!out || !addr || (family != GC_FAMILY_IPV4 && family != GC_FAMILY_IPV6))
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "resolve: family must be 4 or 6");
	memset(out, 0, sizeof(*out));
	out->family = family;
	ret = route_lookup(family, addr, out, buf, err);
	if (ret)
		return ret;
	ret = link_info(out->ifindex, out, &ifflags, &link_type);
	if (ret)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "interface %u of the route to %s",
				 out->ifindex, fmt_addr(family, addr, text, sizeof(text)));
	if ((ifflags & (IFF_LOOPBACK | IFF_NOARP)) || link_type == ARPHRD_LOOPBACK) {
		out->flags |= GCFP_NH_F_NOARP;
		return 0;
	}
	if (link_type != ARPHRD_ETHER)
		return gcfp_fail(err, GCFP_ERR_UNSUPPORTED_LINK, 0,
				 "%s (the route to %s) has link type %u, not Ethernet", out->ifname,
				 fmt_addr(family, addr, text, sizeof(text)), link_type);
	ret = neigh_lookup(out, buf);
	if (ret == 0)
		return 0;
	fmt_addr(family, addr, text, sizeof(text));
	fmt_addr(family, out->via, via, sizeof(via));
	if (ret != -ENOENT)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "RTM_GETNEIGH %s dev %s", via, out->ifname);
	if (flags & GCFP_RESOLVE_PROBE) {
		ret = neigh_probe(out, buf);
		if (ret == -EPERM)
			return gcfp_fail(err, GCFP_ERR_NOT_ROOT, EPERM,
					 "asking the kernel to resolve %s dev %s needs CAP_NET_ADMIN",
					 via, out->ifname);
		if (ret < 0)
			return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "RTM_NEWNEIGH %s dev %s use",
					 via, out->ifname);
	}
	return gcfp_fail(err, GCFP_ERR_NEIGH_UNRESOLVED, 0,
			 "next hop %s dev %s towards %s not resolved yet%s", via, out->ifname, text,
			 flags & GCFP_RESOLVE_PROBE ? " (resolution started)" : "");
}

int gcfp_resolve_nexthop(uint8_t family, const void *addr, uint32_t flags,
			 struct gcfp_nexthop *out, struct gcfp_error *err)
{
	char text[INET6_ADDRSTRLEN];
	uint32_t lower;
	uint16_t vlan_id;
	int ret, vlan;

	ret = resolve(family, addr, flags, out, err);
	/* Filled in whether or not the neighbour is known yet. */
	if (ret && ret != -GCFP_ERR_NEIGH_UNRESOLVED)
		return ret;
	vlan = gcfp_link_vlan(out->ifindex, &lower, &vlan_id);
	if (vlan < 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -vlan, "RTM_GETLINK %s (the route to %s)",
				 out->ifname, fmt_addr(family, addr, text, sizeof(text)));
	if (vlan) {
		/* The neighbour and the source MAC are the VLAN device's; the
		 * frame leaves through the device below it, tagged. */
		out->vlan_ifindex = out->ifindex;
		memcpy(out->vlan_ifname, out->ifname, sizeof(out->vlan_ifname));
		out->vlan_id = vlan_id;
		out->ifindex = lower;
		if (!if_indextoname(lower, out->ifname))
			return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "the device below %s (index %u)",
					 out->vlan_ifname, lower);
	}
	return ret;
}
