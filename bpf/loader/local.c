// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * local.c - the host's own addresses as the in-kernel data planes serve
 * them (struct gc_local_addr): those of an interface (VLAN id 0) and of the
 * 802.1Q VLAN devices on top of it (their VLAN id), each such VLAN marked
 * as served (GC_FAMILY_VLAN); or, for an SFU bound to one address, only
 * that address (on whichever of them carries it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include <bpf/bpf.h>

#include "groupcast_nexthop.h"
#include "internal.h"

/* The VLAN id of interface @name as seen from @ifindex: 0 for @ifindex
 * itself, the id of an 802.1Q VLAN device whose lower device it is, -1 for
 * any other interface. */
static int vlan_of(const char *name, const char *ifname, uint32_t ifindex)
{
	uint32_t index, lower;
	uint16_t vlan_id;

	if (!strcmp(name, ifname))
		return 0;
	index = if_nametoindex(name);
	if (!index || gcfp_link_vlan(index, &lower, &vlan_id) != 1 || lower != ifindex)
		return -1;
	return vlan_id;
}

static int listened(const struct gc_local_addr *listen, const struct gc_local_addr *a)
{
	if (!listen || listen->family == GC_FAMILY_VLAN)
		return 1;	/* a wildcard socket: every address */
	return listen->family == a->family &&
	       !memcmp(listen->addr, a->addr, a->family == GC_FAMILY_IPV4 ? 4 : 16);
}

int gcfp_local_addrs(const char *ifname, const struct gc_local_addr *listen,
		     struct gc_local_addr *out, int max)
{
	struct ifaddrs *ifa, *i;
	const char *last = NULL;
	uint32_t ifindex = if_nametoindex(ifname);
	int n = 0, vlan = -1;

	if (!ifindex)
		return -errno;
	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i && n >= 0; i = i->ifa_next) {
		struct gc_local_addr key = {};

		if (!i->ifa_addr)
			continue;
		/* getifaddrs lists an interface's entries together: one
		 * netlink question per interface. */
		if (!last || strcmp(last, i->ifa_name)) {
			last = i->ifa_name;
			vlan = vlan_of(i->ifa_name, ifname, ifindex);
		}
		if (vlan < 0)
			continue;
		key.vlan_id = vlan;
		if (i->ifa_addr->sa_family == AF_PACKET) {
			if (!vlan)
				continue;
			key.family = GC_FAMILY_VLAN;	/* the VLAN device itself */
		} else if (i->ifa_addr->sa_family == AF_INET) {
			key.family = GC_FAMILY_IPV4;
			memcpy(key.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			key.family = GC_FAMILY_IPV6;
			memcpy(key.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		if (key.family != GC_FAMILY_VLAN && !listened(listen, &key))
			continue;
		if (n == max) {
			n = -E2BIG;
			break;
		}
		out[n++] = key;
	}
	freeifaddrs(ifa);
	return n;
}

int gcfp_local_fill(int map_fd, const char *ifname, const struct gc_local_addr *listen)
{
	struct gc_local_addr now[GC_MAX_LOCAL_ADDRS], key, next, *prev = NULL;
	__u8 one = 1;
	int n, i;

	n = gcfp_local_addrs(ifname, listen, now, GC_MAX_LOCAL_ADDRS);
	if (n < 0)
		return n;
	/* New ones first, then the stale ones out: an address kept is never
	 * missing meanwhile. */
	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(map_fd, &now[i], &one, BPF_ANY))
			return -errno;
	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		for (i = 0; i < n && memcmp(&now[i], &next, sizeof(next)); i++)
			;
		if (i < n) {
			key = next;
			prev = &key;
			continue;
		}
		if (bpf_map_delete_elem(map_fd, &next) && errno != ENOENT)
			return -errno;
		prev = NULL;	/* start over: the map changed under the walk */
	}
	return n;
}
