/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by the loader's source files and the ring core (bpf/ring/ring.c);
 * not part of the API. Defined in error.c. */
#ifndef GROUPCAST_FASTPATH_INTERNAL_H
#define GROUPCAST_FASTPATH_INTERNAL_H

#include "groupcast_fastpath.h"

/* Fill @err (if not NULL) with @code, @sys_errno and the message; returns -@code. */
__attribute__((format(printf, 4, 5)))
int gcfp_fail(struct gcfp_error *err, int code, int sys_errno, const char *fmt, ...);

/* Zero @err (if not NULL): no error, no verifier log. */
void gcfp_clear_error(struct gcfp_error *err);

/* Save the verifier log libbpf printed during the last load to @path, or
 * (NULL) to a file in a new private directory; the file's name goes to
 * @err->log_path. 0 or -errno. Defined in fastpath.c. */
int gcfp_save_verifier_log(const char *path, const char *ifname, struct gcfp_error *err);

/* Publish @r as the route of @ssrc in the route map @routes_fd (a new
 * frozen one-element inner map; the one it replaces is freed by the kernel
 * after an RCU grace period). 0 or -errno (-E2BIG: the map is full). */
int gcfp_route_install(int routes_fd, uint32_t ssrc, const struct gc_route *r);

/* The addresses the data planes serve on @ifname (struct gc_local_addr):
 * its own and its 802.1Q VLAN devices' (with their VLAN id), one
 * GC_FAMILY_VLAN entry per such VLAN device; with @listen (not NULL, family
 * not 0) only that address of them. Their number in @out, or -errno
 * (-E2BIG: over @max). Defined in local.c. */
int gcfp_local_addrs(const char *ifname, const struct gc_local_addr *listen,
		     struct gc_local_addr *out, int max);

/* Make the fast path's "local" map (struct gc_local_addr -> 1) hold exactly
 * gcfp_local_addrs(@ifname, @listen) (new ones added, those gone deleted).
 * Their number, or -errno (-E2BIG: over GC_MAX_LOCAL_ADDRS). local.c. */
int gcfp_local_fill(int map_fd, const char *ifname, const struct gc_local_addr *listen);

/* Whether @ifindex is an 802.1Q VLAN device: 1 with its lower device and
 * VLAN id, 0 if not (another kind, or an 802.1ad one), -errno. nexthop.c. */
int gcfp_link_vlan(uint32_t ifindex, uint32_t *lower, uint16_t *vlan_id);

#endif
