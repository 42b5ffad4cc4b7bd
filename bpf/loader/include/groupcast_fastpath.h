/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * groupcast_fastpath.h - load, attach and drive the in-kernel SFU fast path.
 *
 * A libbpf loader over the skeleton of bpf/groupcast.bpf.c, usable from C
 * and (as the SwiftPM target CGroupcastFastPath, path bpf/loader) from Swift. State lives in
 * objects pinned under /sys/fs/bpf/groupcast/<IFACE> (IFACE@ns<inode> when
 * the caller is not in the initial network namespace), so separate processes
 * (a CLI, the SFU) share one attachment.
 *
 * Every function returns 0 on success or a negative enum gcfp_code and, if
 * @err is not NULL, fills it with the code, the errno behind it and a
 * message that names the interface, the object and the failing call.
 */
#ifndef GROUPCAST_FASTPATH_H
#define GROUPCAST_FASTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "groupcast_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

enum gcfp_code {
	GCFP_OK = 0,
	GCFP_ERR_NOT_ROOT = 1,		/* needs CAP_SYS_ADMIN or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON */
	GCFP_ERR_NO_DEVICE = 2,		/* no such network interface (in this netns) */
	GCFP_ERR_ALREADY_ATTACHED = 3,	/* the fast path is already attached there */
	GCFP_ERR_BUSY = 4,		/* another XDP program / TC filter holds the hook */
	GCFP_ERR_NOT_ATTACHED = 5,	/* nothing pinned for that interface */
	GCFP_ERR_VERIFIER = 6,		/* program rejected; verifier log in err->log_path */
	GCFP_ERR_INVALID = 7,		/* invalid argument (err->message says which) */
	GCFP_ERR_NO_ROUTE = 8,		/* no route for that SSRC */
	GCFP_ERR_ROUTES_FULL = 9,	/* route map at max_routes */
	GCFP_ERR_BPFFS = 10,		/* no usable bpffs at /sys/fs/bpf */
	GCFP_ERR_ABI = 11,		/* pinned objects of another layout (GC_ABI_VERSION) */
	GCFP_ERR_SYSTEM = 12,		/* any other failed call: err->sys_errno */
	GCFP_ERR_UNREACHABLE = 13,	/* no route to the address (groupcast_nexthop.h) */
	GCFP_ERR_NEIGH_UNRESOLVED = 14,	/* the next hop's link-layer address is not known yet */
	GCFP_ERR_UNSUPPORTED_LINK = 15,	/* the egress device is neither Ethernet nor loopback */
};

struct gcfp_error {
	int code;		/* enum gcfp_code (positive) */
	int sys_errno;		/* errno of the failing call, 0 if none */
	char message[512];
	char log_path[256];	/* GCFP_ERR_VERIFIER: where the verifier log was saved */
};

/* A static description of @code ("no such device", ...). */
const char *gcfp_code_name(int code);

enum gcfp_xdp_mode {
	GCFP_XDP_AUTO = 0,	/* native if the driver supports it, else generic */
	GCFP_XDP_NATIVE = 1,
	GCFP_XDP_GENERIC = 2,
};

struct gcfp_attach_opts {
	const char *ifname;
	uint16_t port;			/* SFU media UDP port, host order, != 0 */
	uint8_t echo;			/* 1: echo every media packet to its origin */
	uint8_t xdp_mode;		/* enum gcfp_xdp_mode (GC_INGRESS_XDP only) */
	uint32_t max_routes;		/* 0: GC_DEFAULT_MAX_ROUTES */
	const char *verifier_log_path;	/* NULL: <IFACE>.log in a new 0700 directory
					 * /tmp/groupcast-verifier.XXXXXX (mkdtemp) */
	/* The address the SFU's media socket is bound to: the only destination
	 * replicated for (and so the copies' source). Family 0 (zeroed): a
	 * wildcard socket, every address of the interface and its VLAN devices.
	 * vlan_id and reserved zero. */
	struct gc_local_addr listen;
	/* enum gc_ingress (groupcast_layout.h): GC_INGRESS_XDP (0) attaches the
	 * XDP program in front of the TC program; GC_INGRESS_TC attaches only
	 * the TC program, which then verifies and counts everything itself
	 * (for veth and other virtual devices, where native XDP copies every
	 * skb; Docs/fastpath.md). */
	uint8_t ingress;
};

/* Load both programs (GC_INGRESS_TC: only the TC program), pin their maps
 * and attach XDP (ingress) and TC (clsact ingress) to @opts->ifname. */
int gcfp_attach(const struct gcfp_attach_opts *opts, struct gcfp_error *err);

/* Detach both programs from @ifname and remove its pins. With nothing
 * pinned, detach the ring backend's XDP program (GC_RING_PROG_NAME, not
 * pinned: it outlives a killed SFU) where one is attached; GCFP_ERR_BUSY if
 * another program is, GCFP_ERR_NOT_ATTACHED if none is. */
int gcfp_detach(const char *ifname, struct gcfp_error *err);

struct gcfp_status {
	uint8_t attached;	/* 1: the programs of its ingress attached and pinned */
	uint8_t xdp_mode;	/* enum gcfp_xdp_mode: NATIVE/GENERIC, AUTO if not attached */
	uint8_t echo;
	uint8_t ingress;	/* enum gc_ingress */
	uint16_t port;
	uint32_t ifindex;
	uint32_t xdp_prog_id;	/* 0: not attached */
	uint32_t tc_prog_id;	/* 0: not attached */
	uint32_t route_count;
	uint32_t max_routes;
	char pin_dir[256];
};

/* GCFP_ERR_NOT_ATTACHED if nothing is pinned for @ifname; otherwise fills
 * @st (attached = 0 if a program was removed behind the loader's back). */
int gcfp_status(const char *ifname, struct gcfp_status *st, struct gcfp_error *err);

/* The pin directory for @ifname in the caller's network namespace. */
int gcfp_pin_dir(const char *ifname, char *buf, size_t size, struct gcfp_error *err);

/* Open the pinned maps of an attachment (for route updates and stats). */
struct gcfp_handle;
int gcfp_open(const char *ifname, struct gcfp_handle **out, struct gcfp_error *err);
void gcfp_close(struct gcfp_handle *h);

/* Fill a subscriber entry: @addr network order (IPv4: 4 bytes, IPv6: 16),
 * @port host order, @vlan_id the tag its copies carry (0: none; the
 * next hop's, gcfp_resolve_nexthop). src_mac is left zero: gcfp_route_set
 * fills it in. */
int gcfp_subscriber_init(struct gc_subscriber *s, uint8_t family, const void *addr,
			 uint16_t port, const uint8_t mac[6], uint32_t ifindex, uint16_t vlan_id,
			 struct gcfp_error *err);

/*
 * Install or replace the route of @ssrc: only @origin_addr/@origin_port
 * (network-order address, host-order port) on VLAN @origin_vlan (0:
 * untagged; the VLAN of the route back to the origin) may send on it; copies go to
 * @subs[0..n_subs). Entries with a zero src_mac get their egress
 * interface's MAC. With n_subs > GC_MAX_SUBSCRIBERS the route is installed
 * with GC_ROUTE_F_USERSPACE (origin still checked in the kernel, packets
 * passed to user space) and 1 is returned instead of 0.
 */
int gcfp_route_set(struct gcfp_handle *h, uint32_t ssrc, uint8_t family,
		   const void *origin_addr, uint16_t origin_port, uint16_t origin_vlan,
		   uint8_t stream_type, const struct gc_subscriber *subs, uint32_t n_subs,
		   struct gcfp_error *err);
/* Install or replace the route of @ssrc with GC_ROUTE_F_USERSPACE and no
 * subscribers: the kernel checks the origin and passes the stream's packets
 * to user space (for receivers it cannot reach yet, e.g. an unresolved
 * neighbour). Returns 1 like gcfp_route_set for such a route. */
int gcfp_route_set_userspace(struct gcfp_handle *h, uint32_t ssrc, uint8_t family,
			     const void *origin_addr, uint16_t origin_port, uint16_t origin_vlan,
			     uint8_t stream_type, struct gcfp_error *err);
/* Removes the route of @ssrc and its media counters (read them first). */
int gcfp_route_remove(struct gcfp_handle *h, uint32_t ssrc, struct gcfp_error *err);
/* The media counters of the route of @ssrc (struct gc_media_counters) summed
 * over CPUs; GCFP_ERR_NO_ROUTE without a route. */
int gcfp_route_media(struct gcfp_handle *h, uint32_t ssrc, struct gc_media_counters *out,
		     struct gcfp_error *err);
int gcfp_route_get(struct gcfp_handle *h, uint32_t ssrc, struct gc_route *out,
		   struct gcfp_error *err);
/* Iterate SSRCs: @prev NULL for the first; returns 1 when there are no more. */
int gcfp_route_next(struct gcfp_handle *h, const uint32_t *prev, uint32_t *next,
		    struct gcfp_error *err);

/* Re-reads the attached interface's IPv4/IPv6 addresses, and its VLAN
 * devices' with their VLAN ids, into the "local" map (the only destinations
 * the fast path replicates for; only the listen address of them if attached
 * with one): addresses and VLAN devices added since attach are served,
 * removed ones no longer. The SFU calls it periodically. Returns the number
 * of entries. */
int gcfp_local_refresh(struct gcfp_handle *h, struct gcfp_error *err);

/* Per-CPU counters summed: out[i] is enum gc_stat i. */
int gcfp_stats(struct gcfp_handle *h, uint64_t out[GC_STAT_MAX], struct gcfp_error *err);

/* The processing-delay histogram (struct gc_delay_hist) summed over CPUs. */
int gcfp_delay(struct gcfp_handle *h, struct gc_delay_hist *out, struct gcfp_error *err);

/* The name of counter @stat ("forwarded", "drop_spoofed", ...), NULL if out of range. */
const char *gcfp_stat_name(unsigned int stat);

#ifdef __cplusplus
}
#endif
#endif /* GROUPCAST_FASTPATH_H */
