/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * groupcast_nexthop.h - where a packet to an address leaves this host.
 *
 * The in-kernel data planes (the XDP/TC fast path, the AF_XDP ring) write
 * Ethernet frames themselves, so for every receiver they need what the
 * stack's output path would have used: the egress interface, the next hop's
 * MAC address, the interface's MAC address and the source address. This
 * asks the kernel over rtnetlink (RTM_GETROUTE, then RTM_GETNEIGH for the
 * gateway or the destination itself), in the caller's network namespace.
 *
 * Errors use the codes and struct of groupcast_fastpath.h.
 */
#ifndef GROUPCAST_NEXTHOP_H
#define GROUPCAST_NEXTHOP_H

#include <stdint.h>

#include "groupcast_fastpath.h"

#ifdef __cplusplus
extern "C" {
#endif

/* struct gcfp_nexthop.flags */
#define GCFP_NH_F_GATEWAY	(1u << 0)	/* via a gateway: dst_mac is the gateway's */
#define GCFP_NH_F_NOARP		(1u << 1)	/* no link-layer resolution (lo, NOARP): dst_mac zero */
#define GCFP_NH_F_LOCAL		(1u << 2)	/* the address is this host's own (route type local) */

/*
 * @ifindex:  egress interface; @ifname its name. When the route goes through
 *            an 802.1Q VLAN device (@vlan_id != 0), the device below it, the
 *            VLAN device being @vlan_ifindex/@vlan_ifname.
 * @vlan_id:  the VLAN the packet must be tagged with, 0: untagged.
 * @family:   GC_FAMILY_IPV4 or GC_FAMILY_IPV6.
 * @dst_mac:  the next hop's MAC address (gateway, or the destination on link).
 * @src_mac:  the MAC address of @ifindex, or of the VLAN device (zero on
 *            devices without one, e.g. lo).
 * @src_addr: the source address the route prefers (RTA_PREFSRC), network
 *            order, IPv4 in the first 4 bytes; zero if the route names none.
 * @via:      the address resolved to @dst_mac: the gateway or the destination.
 */
struct gcfp_nexthop {
	uint32_t ifindex;
	uint8_t family;
	uint8_t flags;		/* GCFP_NH_F_* */
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	uint8_t src_addr[16];
	uint8_t via[16];
	uint16_t neigh_state;	/* NUD_* of the neighbour entry, 0 if none (or NOARP) */
	char ifname[16];
	uint16_t vlan_id;
	uint32_t vlan_ifindex;
	char vlan_ifname[16];
};

/* gcfp_resolve_nexthop() @flags */
#define GCFP_RESOLVE_PROBE	(1u << 0)	/* unresolved: ask the kernel to resolve it (NTF_USE) */

/*
 * Resolve the next hop towards @addr (@family GC_FAMILY_IPV4: 4 bytes,
 * GC_FAMILY_IPV6: 16, network order). Errors:
 *   GCFP_ERR_UNREACHABLE        no route (or an unreachable/blackhole/prohibit one)
 *   GCFP_ERR_NEIGH_UNRESOLVED   the route is known but the next hop's MAC is not
 *                               (yet): @out is filled except dst_mac. With
 *                               GCFP_RESOLVE_PROBE the kernel has been asked to
 *                               resolve it (ARP / neighbour solicitation); ask again later.
 *   GCFP_ERR_UNSUPPORTED_LINK   the egress device is not Ethernet or loopback
 *   GCFP_ERR_NOT_ROOT           probing needs CAP_NET_ADMIN
 */
int gcfp_resolve_nexthop(uint8_t family, const void *addr, uint32_t flags,
			 struct gcfp_nexthop *out, struct gcfp_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GROUPCAST_NEXTHOP_H */
