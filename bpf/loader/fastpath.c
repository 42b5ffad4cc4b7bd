// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fastpath.c - libbpf loader of the groupcast fast path (see
 * include/groupcast_fastpath.h for the API and Docs/fastpath.md for the
 * design).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "groupcast_fastpath.h"
#include "../generated/groupcast.skel.h"
#include "internal.h"


#define BPFFS_ROOT	"/sys/fs/bpf"

#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC	0xcafe4a11
#endif

struct gcfp_handle {
	int routes_fd;
	int stats_fd;
	int delay_fd;
	int media_fd;
	int config_fd;
	int state_fd;
	char pin_dir[256];
};

static const char *const stat_names[GC_STAT_MAX] = GC_STAT_NAMES;

const char *gcfp_stat_name(unsigned int stat)
{
	return stat < GC_STAT_MAX ? stat_names[stat] : NULL;
}

/* CAP_SYS_ADMIN, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON: without
 * CAP_PERFMON the verifier refuses the variable-offset packet pointer
 * arithmetic the parser needs ("pointer arithmetic prohibited for !root"). */
static int check_caps(struct gcfp_error *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	unsigned long long eff;

	if (syscall(SYS_capget, &hdr, data))
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "capget");
	eff = data[0].effective | ((unsigned long long)data[1].effective << 32);
	if (eff & (1ULL << CAP_SYS_ADMIN))
		return 0;
	if ((eff & (1ULL << CAP_BPF)) && (eff & (1ULL << CAP_NET_ADMIN)) &&
	    (eff & (1ULL << CAP_PERFMON)))
		return 0;
	return gcfp_fail(err, GCFP_ERR_NOT_ROOT, EPERM,
			 "the fast path needs root (CAP_SYS_ADMIN, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)");
}

static int check_ifname(const char *ifname, unsigned int *ifindex, struct gcfp_error *err)
{
	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/'))
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "invalid interface name '%s'",
				 ifname ? ifname : "(null)");
	*ifindex = if_nametoindex(ifname);
	if (!*ifindex)
		return gcfp_fail(err, errno == ENODEV || errno == ENXIO ? GCFP_ERR_NO_DEVICE
								       : GCFP_ERR_SYSTEM,
				 errno, "no such device '%s' in this network namespace", ifname);
	return 0;
}

/* The initial network namespace's inode number where the kernel fixes it
 * (PROC_NET_INIT_INO); older kernels number it dynamically. */
#define GC_PROC_NET_INIT_INO	0xEFFFFFF9U

static int netns_inode(unsigned long long *ino, unsigned long long *init_ino)
{
	struct stat self, init;

	if (stat("/proc/thread-self/ns/net", &self))
		return -errno;
	*ino = self.st_ino;
	/* /proc/1 may be unreadable (sandboxes): then fall back on the fixed
	 * number, and failing that name the pins after the netns. */
	*init_ino = stat("/proc/1/ns/net", &init) ? GC_PROC_NET_INIT_INO : init.st_ino;
	return 0;
}

/*
 * Make sure /sys/fs/bpf is a bpffs, mounting one if @may_mount. Note that
 * `ip netns exec` gives every command its own mount namespace with a fresh
 * /sys: a bpffs mounted there, and the pins in it, vanish with the command.
 * Run separate commands in a netns with `nsenter --net=/run/netns/NAME`,
 * which keeps the host's /sys/fs/bpf.
 */
static int pin_root(char *buf, size_t size, int may_mount, struct gcfp_error *err)
{
	struct statfs sfs;

	snprintf(buf, size, "%s", BPFFS_ROOT);
	if (!statfs(BPFFS_ROOT, &sfs) && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	if (!may_mount)
		return gcfp_fail(err, GCFP_ERR_NOT_ATTACHED, 0,
				 "no bpffs at %s, so nothing is pinned there (a command run by "
				 "`ip netns exec` sees a fresh /sys: use nsenter --net=/run/netns/NAME)",
				 BPFFS_ROOT);
	if (mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700"))
		return gcfp_fail(err, GCFP_ERR_BPFFS, errno, "mount -t bpf bpf %s", BPFFS_ROOT);
	return 0;
}

static int pin_dir_of(const char *ifname, char *buf, size_t size, int may_mount,
		      struct gcfp_error *err)
{
	unsigned long long ino = 0, init_ino = 0;
	char root[64];
	int n, ret;

	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/'))
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "invalid interface name '%s'",
				 ifname ? ifname : "(null)");
	ret = netns_inode(&ino, &init_ino);
	if (ret)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "stat /proc/self/ns/net");
	ret = pin_root(root, sizeof(root), may_mount, err);
	if (ret)
		return ret;
	if (ino == init_ino)
		n = snprintf(buf, size, "%s/groupcast/%s", root, ifname);
	else
		n = snprintf(buf, size, "%s/groupcast/%s@ns%llu", root, ifname, ino);
	if (n < 0 || (size_t)n >= size)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "pin path buffer too small");
	return 0;
}

int gcfp_pin_dir(const char *ifname, char *buf, size_t size, struct gcfp_error *err)
{
	gcfp_clear_error(err);
	return pin_dir_of(ifname, buf, size, 0, err);
}

/* ---- verifier log capture ---------------------------------------------- */

static char *log_buf;
static size_t log_len, log_cap;

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n <= 0)
		return 0;
	if (log_len + n + 1 > log_cap) {
		size_t cap = log_cap ? log_cap * 2 : 65536;
		char *p;

		while (cap < log_len + n + 1)
			cap *= 2;
		p = realloc(log_buf, cap);
		if (!p)
			return 0;
		log_buf = p;
		log_cap = cap;
	}
	vsnprintf(log_buf + log_len, n + 1, fmt, ap);
	log_len += n;
	return 0;
}

static int if_mac(uint32_t ifindex, uint8_t mac[6]);
static int obj_get(const char *dir, const char *name);
static int read_state(int state_fd, struct gc_loader_state *st);

int gcfp_local_refresh(struct gcfp_handle *h, struct gcfp_error *err)
{
	struct gc_loader_state state;
	char ifname[IF_NAMESIZE];
	int fd, ret;

	gcfp_clear_error(err);
	ret = read_state(h->state_fd, &state);
	if (ret)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "reading %s/%s", h->pin_dir, GC_PIN_STATE);
	if (!if_indextoname(state.ifindex, ifname))
		return gcfp_fail(err, GCFP_ERR_NO_DEVICE, errno,
				 "the interface of %s (index %u) is gone", h->pin_dir, state.ifindex);
	fd = obj_get(h->pin_dir, GC_PIN_LOCAL);
	if (fd < 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "opening %s/%s", h->pin_dir, GC_PIN_LOCAL);
	ret = gcfp_local_fill(fd, ifname, &state.listen);
	close(fd);
	if (ret < 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "recording the addresses of %s%s", ifname,
				 ret == -E2BIG ? " (more than GC_MAX_LOCAL_ADDRS)" : "");
	return ret;
}

/* Write libbpf's captured messages to @path, or (NULL) to IFACE.log in a new
 * directory only root can enter, named unpredictably (mkdtemp, 0700): a fixed
 * name in a world-writable directory lets any local user plant a symlink
 * there and have root overwrite a file of their choice. Never follows a
 * symlink at @path either. Names the file in @err. 0 or -errno. */
int gcfp_save_verifier_log(const char *path, const char *ifname, struct gcfp_error *err)
{
	char def[PATH_MAX], dir[] = "/tmp/groupcast-verifier.XXXXXX";
	int fd, flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, e;
	ssize_t n;

	if (!path) {
		if (!mkdtemp(dir))
			return -errno;
		snprintf(def, sizeof(def), "%s/%s.log", dir, ifname);
		path = def;
		flags |= O_EXCL;
	} else {
		flags |= O_TRUNC;
	}
	fd = open(path, flags, 0600);
	if (fd < 0)
		return -errno;
	n = log_len ? write(fd, log_buf, log_len) : 0;
	e = n < 0 ? errno : 0;
	if (close(fd) && !e)
		e = errno;
	if (e)
		return -e;
	if (err)
		snprintf(err->log_path, sizeof(err->log_path), "%.*s", (int)sizeof(err->log_path) - 1, path);
	return 0;
}

/* ---- pins --------------------------------------------------------------- */

static const char *const pin_names[] = {
	GC_PIN_ROUTES, GC_PIN_STATS, GC_PIN_DELAY, GC_PIN_MEDIA, GC_PIN_CONFIG, GC_PIN_STATE,
	GC_PIN_LOCAL, GC_PIN_PROG_XDP, GC_PIN_PROG_TC,
};

static void unpin_all(const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(pin_names) / sizeof(pin_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pin_names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int obj_get(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

static __u32 prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static int read_state(int state_fd, struct gc_loader_state *st)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(state_fd, &key, st) ? -errno : 0;
}

/* ---- attach / detach ---------------------------------------------------- */

static int xdp_current(int ifindex, struct bpf_xdp_query_opts *q)
{
	memset(q, 0, sizeof(*q));
	q->sz = sizeof(*q);
	return bpf_xdp_query(ifindex, 0, q);
}

/*
 * Attach and detach hold an exclusive flock on GC_PIN_ROOT: checking for an
 * existing attachment, loading, pinning and attaching are not one atomic
 * step, and two processes starting on the same interface at once must not
 * take each other's fresh pins for stale ones. Returns the locked fd, or
 * -1 when there is no bpffs to lock (and nothing @may_mount).
 */
static int lock_pins(int may_mount)
{
	char root[64];
	int fd;

	if (pin_root(root, sizeof(root), may_mount, NULL))
		return -1;
	if (mkdir(GC_PIN_ROOT, 0700) && errno != EEXIST)
		return -1;
	fd = open(GC_PIN_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) && errno == EINTR)
		;
	return fd;
}

static void unlock_pins(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

static int attach_locked(const struct gcfp_attach_opts *o, struct gcfp_error *err);
static int detach_locked(const char *ifname, struct gcfp_error *err);

enum pin_change { PIN_ATTACH, PIN_DETACH };

/*
 * Every attach and detach: the capability check first (nothing is mounted or
 * locked for a caller that may not change the fast path), then the change
 * under the pin lock. Only an attach may mount bpffs.
 */
static int change_pins(enum pin_change change, const struct gcfp_attach_opts *o,
		       const char *ifname, struct gcfp_error *err)
{
	int lock, ret;

	gcfp_clear_error(err);
	ret = check_caps(err);
	if (ret)
		return ret;
	lock = lock_pins(change == PIN_ATTACH);
	if (change == PIN_ATTACH)
		ret = attach_locked(o, err);
	else
		ret = detach_locked(ifname, err);
	unlock_pins(lock);
	return ret;
}

int gcfp_attach(const struct gcfp_attach_opts *o, struct gcfp_error *err)
{
	return change_pins(PIN_ATTACH, o, NULL, err);
}

int gcfp_detach(const char *ifname, struct gcfp_error *err)
{
	return change_pins(PIN_DETACH, NULL, ifname, err);
}

static int attach_locked(const struct gcfp_attach_opts *o, struct gcfp_error *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, tc, .handle = GC_TC_HANDLE,
			    .priority = GC_TC_PRIORITY);
	struct gc_loader_state state = {};
	struct bpf_xdp_query_opts q;
	char dir[256], path[PATH_MAX];
	struct groupcast *skel = NULL;
	libbpf_print_fn_t old_print;
	unsigned int ifindex;
	int ret, xdp_fd, tc_fd, created = 0, xdp_attached = 0;
	__u32 key = 0, mode_flags;

	if (!o)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "no attach options");
	if (!o->port)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "port must be 1..65535");
	if ((o->listen.family != GC_FAMILY_VLAN && o->listen.family != GC_FAMILY_IPV4 &&
	     o->listen.family != GC_FAMILY_IPV6) || o->listen.reserved || o->listen.vlan_id)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0,
				 "listen address: family %u (0, 4 or 6), reserved and vlan_id zero",
				 o->listen.family);
	if (o->verifier_log_path && strlen(o->verifier_log_path) >= sizeof(err->log_path))
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "verifier log path longer than %zu bytes",
				 sizeof(err->log_path) - 1);
	if (o->xdp_mode > GCFP_XDP_GENERIC)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "unknown XDP mode %u", o->xdp_mode);
	if (o->ingress != GC_INGRESS_XDP && o->ingress != GC_INGRESS_TC)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "unknown ingress %u (xdp 0, tc 1)",
				 o->ingress);
	ret = check_ifname(o->ifname, &ifindex, err);
	if (ret)
		return ret;
	ret = pin_dir_of(o->ifname, dir, sizeof(dir), 1, err);
	if (ret)
		return ret;

	/* Pins left by an attachment whose programs are gone (the interface
	 * was deleted, or `ip link set dev X xdp off`) are stale: remove them. */
	if (!access(dir, F_OK)) {
		struct gcfp_status st;

		if (gcfp_status(o->ifname, &st, NULL) == 0 &&
		    (st.xdp_prog_id || st.tc_prog_id))
			return gcfp_fail(err, GCFP_ERR_ALREADY_ATTACHED, 0,
					 "the fast path is already attached to %s (xdp prog %u, tc prog %u); "
					 "detach it first", o->ifname, st.xdp_prog_id, st.tc_prog_id);
		unpin_all(dir);
	}
	/* GC_INGRESS_TC takes no metadata for a vouch: an XDP program in
	 * front (not ours) is no concern of the fast path's then. */
	if (o->ingress == GC_INGRESS_XDP && xdp_current(ifindex, &q) == 0 && q.prog_id)
		return gcfp_fail(err, GCFP_ERR_BUSY, 0,
				 "%s already has XDP program %u attached (not ours)", o->ifname,
				 q.prog_id);

	/* libbpf's messages (the verifier log among them) go to the log file
	 * on failure, not to the caller's stderr. */
	log_len = 0;
	old_print = libbpf_set_print(capture_print);
	skel = groupcast__open();
	if (!skel) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "opening the BPF skeleton");
		goto out;
	}
	skel->rodata->gc_cfg.abi_version = GC_ABI_VERSION;
	skel->rodata->gc_cfg.port = o->port;
	skel->rodata->gc_cfg.echo = o->echo ? 1 : 0;
	skel->rodata->gc_cfg.ingress = o->ingress;
	/* GC_INGRESS_TC: the XDP program is neither loaded nor pinned. */
	if (o->ingress == GC_INGRESS_TC)
		bpf_program__set_autoload(skel->progs.groupcast_xdp, false);
	ret = if_mac(ifindex, skel->rodata->gc_cfg.mac);
	if (ret) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "reading the MAC address of %s", o->ifname);
		goto out;
	}
	/* A route's media counters live as long as the route: as many. */
	if (o->max_routes &&
	    (bpf_map__set_max_entries(skel->maps.gc_routes, o->max_routes) ||
	     bpf_map__set_max_entries(skel->maps.gc_media, o->max_routes))) {
		ret = gcfp_fail(err, GCFP_ERR_INVALID, errno, "max_routes %u", o->max_routes);
		goto out;
	}

	ret = groupcast__load(skel);
	if (ret) {
		int e = -ret;

		if (e == EPERM) {
			ret = gcfp_fail(err, GCFP_ERR_NOT_ROOT, e, "loading the BPF programs");
			goto out;
		}
		if (gcfp_save_verifier_log(o->verifier_log_path, o->ifname, err))
			ret = gcfp_fail(err, GCFP_ERR_VERIFIER, e,
					"the kernel rejected the BPF programs (could not save the "
					"verifier log)");
		else
			ret = gcfp_fail(err, GCFP_ERR_VERIFIER, e,
					"the kernel rejected the BPF programs; verifier log saved to %s",
					err ? err->log_path : "(no error struct)");
		goto out;
	}

	ret = gcfp_local_fill(bpf_map__fd(skel->maps.gc_local), o->ifname, &o->listen);
	if (ret < 0) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "recording the addresses of %s", o->ifname);
		goto out;
	}

	snprintf(path, sizeof(path), "%s", dir);
	*strrchr(path, '/') = 0;
	if (mkdir(path, 0700) && errno != EEXIST) {
		ret = gcfp_fail(err, GCFP_ERR_BPFFS, errno, "mkdir %s", path);
		goto out;
	}
	if (mkdir(dir, 0700)) {
		ret = gcfp_fail(err, GCFP_ERR_BPFFS, errno, "mkdir %s", dir);
		goto out;
	}
#define PIN(obj_pin, what, name) do { \
		snprintf(path, sizeof(path), "%s/%s", dir, name); \
		if (obj_pin(what, path)) { \
			ret = gcfp_fail(err, GCFP_ERR_BPFFS, errno, "pinning %s", path); \
			goto out_unpin; \
		} \
	} while (0)
	PIN(bpf_map__pin, skel->maps.gc_routes, GC_PIN_ROUTES);
	PIN(bpf_map__pin, skel->maps.gc_stats, GC_PIN_STATS);
	PIN(bpf_map__pin, skel->maps.gc_delay, GC_PIN_DELAY);
	PIN(bpf_map__pin, skel->maps.gc_media, GC_PIN_MEDIA);
	PIN(bpf_map__pin, skel->maps.rodata, GC_PIN_CONFIG);
	PIN(bpf_map__pin, skel->maps.gc_state, GC_PIN_STATE);
	PIN(bpf_map__pin, skel->maps.gc_local, GC_PIN_LOCAL);
	if (o->ingress == GC_INGRESS_XDP)
		PIN(bpf_program__pin, skel->progs.groupcast_xdp, GC_PIN_PROG_XDP);
	PIN(bpf_program__pin, skel->progs.groupcast_tc, GC_PIN_PROG_TC);
#undef PIN

	xdp_fd = bpf_program__fd(skel->progs.groupcast_xdp);
	tc_fd = bpf_program__fd(skel->progs.groupcast_tc);

	mode_flags = 0;
	if (o->ingress == GC_INGRESS_TC)
		goto attach_tc;
	mode_flags = o->xdp_mode == GCFP_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	ret = bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flags, NULL);
	if (ret && o->xdp_mode == GCFP_XDP_AUTO && (ret == -EOPNOTSUPP || ret == -EINVAL)) {
		mode_flags = XDP_FLAGS_SKB_MODE;
		ret = bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flags,
				     NULL);
	}
	if (ret) {
		ret = gcfp_fail(err, ret == -EBUSY || ret == -EEXIST ? GCFP_ERR_BUSY : GCFP_ERR_SYSTEM,
				-ret, "attaching the XDP program to %s (%s mode)", o->ifname,
				mode_flags == XDP_FLAGS_SKB_MODE ? "generic" : "native");
		goto out_unpin;
	}
	xdp_attached = 1;

attach_tc:
	hook.ifindex = ifindex;
	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "creating the clsact qdisc on %s", o->ifname);
		goto out_detach;
	}
	created = ret == 0;
	tc.prog_fd = tc_fd;
	ret = bpf_tc_attach(&hook, &tc);
	if (ret) {
		ret = gcfp_fail(err, ret == -EEXIST ? GCFP_ERR_BUSY : GCFP_ERR_SYSTEM, -ret,
				"attaching the TC program to %s ingress (handle 0x%x prio 0x%x)",
				o->ifname, GC_TC_HANDLE, GC_TC_PRIORITY);
		goto out_detach;
	}

	state.ifindex = ifindex;
	state.xdp_flags = mode_flags;
	state.tc_handle = GC_TC_HANDLE;
	state.tc_priority = GC_TC_PRIORITY;
	state.created_clsact = created;
	state.listen = o->listen;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.gc_state), &key, &state, 0)) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "writing the loader state");
		goto out_tc;
	}
	ret = 0;
	goto out;	/* attachments and pins hold the objects: drop our fds */

out_tc:
	tc.prog_fd = tc.flags = tc.prog_id = 0;
	bpf_tc_detach(&hook, &tc);
out_detach:
	if (created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	if (xdp_attached)
		bpf_xdp_detach(ifindex, mode_flags, NULL);
out_unpin:
	unpin_all(dir);
out:
	groupcast__destroy(skel);
	libbpf_set_print(old_print);
	return ret;
}

/*
 * The ring backend's XDP program (bpf/ring.bpf.c) is attached by netlink,
 * not pinned, and outlives a killed SFU. Nothing pinned for @ifname: detach
 * that program where it is attached (driver or generic mode), recognised by
 * its name; any other program is left where it is.
 */
static int detach_ring_locked(const char *ifname, const char *pins, struct gcfp_error *err)
{
	static const struct { __u32 attach_flag; const char *mode; } modes[] = {
		{ XDP_FLAGS_DRV_MODE, "driver" }, { XDP_FLAGS_SKB_MODE, "generic" },
	};
	struct bpf_xdp_query_opts q;
	unsigned int ifindex, i;
	int ret, found = 0;

	ret = check_ifname(ifname, &ifindex, err);
	if (ret)
		return gcfp_fail(err, GCFP_ERR_NOT_ATTACHED, 0,
				 "the fast path is not attached to %s (nothing pinned: %s)", ifname,
				 pins);
	if (xdp_current(ifindex, &q))
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "querying the XDP programs of %s", ifname);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		__u32 id = modes[i].attach_flag == XDP_FLAGS_DRV_MODE ? q.drv_prog_id : q.skb_prog_id;
		LIBBPF_OPTS(bpf_xdp_attach_opts, replace);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd;

		if (!id)
			continue;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "XDP program %u of %s", id, ifname);
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "XDP program %u of %s", id, ifname);
			close(fd);
			return ret;
		}
		if (strcmp(info.name, GC_RING_PROG_NAME)) {
			close(fd);
			return gcfp_fail(err, GCFP_ERR_BUSY, 0,
					 "%s has XDP program %u (%s, %s mode), neither the fast path's nor the ring's: left attached",
					 ifname, id, info.name, modes[i].mode);
		}
		/* Only while it is still that program (a new SFU may have attached since). */
		replace.old_prog_fd = fd;
		ret = bpf_xdp_detach(ifindex, modes[i].attach_flag | XDP_FLAGS_REPLACE, &replace);
		close(fd);
		if (ret)
			return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "detaching the ring's XDP program %u from %s",
					 id, ifname);
		found = 1;
	}
	if (!found)
		return gcfp_fail(err, GCFP_ERR_NOT_ATTACHED, 0,
				 "the fast path is not attached to %s (nothing pinned: %s; no ring program)",
				 ifname, pins);
	return 0;
}

static int detach_locked(const char *ifname, struct gcfp_error *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, tc);
	struct gc_loader_state state;
	struct bpf_xdp_query_opts q;
	unsigned int ifindex;
	char dir[256];
	int ret, fd, xdp_fd;
	__u32 our_xdp = 0;

	ret = pin_dir_of(ifname, dir, sizeof(dir), 0, err);
	if (ret) {
		/* No bpffs: nothing is pinned, but the ring's program may be attached. */
		struct gcfp_error ring_err = {};

		if (!detach_ring_locked(ifname, "no bpffs", &ring_err)) {
			gcfp_clear_error(err);
			return 0;
		}
		if (ring_err.code == GCFP_ERR_BUSY && err)
			*err = ring_err;
		return ret;
	}
	fd = obj_get(dir, GC_PIN_STATE);
	if (fd < 0)
		return detach_ring_locked(ifname, dir, err);	/* "nothing pinned: DIR" */
	ret = read_state(fd, &state);
	close(fd);
	if (ret)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "reading %s/%s", dir, GC_PIN_STATE);

	/* The interface may be gone (its programs went with it): then only
	 * the pins remain to be removed. */
	ifindex = if_nametoindex(ifname);
	if (ifindex && ifindex == state.ifindex) {
		xdp_fd = obj_get(dir, GC_PIN_PROG_XDP);
		if (xdp_fd >= 0) {
			our_xdp = prog_id_of(xdp_fd);
			close(xdp_fd);
		}
		if (xdp_current(ifindex, &q) == 0 && q.prog_id && q.prog_id == our_xdp) {
			ret = bpf_xdp_detach(ifindex, state.xdp_flags, NULL);
			if (ret)
				return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret,
						 "detaching XDP program %u from %s", our_xdp, ifname);
		}
		hook.ifindex = ifindex;
		tc.handle = state.tc_handle;
		tc.priority = state.tc_priority;
		ret = bpf_tc_detach(&hook, &tc);
		if (ret && ret != -ENOENT && ret != -EINVAL)
			return gcfp_fail(err, GCFP_ERR_SYSTEM, -ret, "detaching the TC filter from %s",
					 ifname);
	}
	unpin_all(dir);
	return 0;
}

/* ---- handle, routes, stats --------------------------------------------- */

void gcfp_close(struct gcfp_handle *h)
{
	if (!h)
		return;
	if (h->routes_fd >= 0)
		close(h->routes_fd);
	if (h->stats_fd >= 0)
		close(h->stats_fd);
	if (h->delay_fd >= 0)
		close(h->delay_fd);
	if (h->media_fd >= 0)
		close(h->media_fd);
	if (h->config_fd >= 0)
		close(h->config_fd);
	if (h->state_fd >= 0)
		close(h->state_fd);
	free(h);
}

int gcfp_open(const char *ifname, struct gcfp_handle **out, struct gcfp_error *err)
{
	struct gcfp_handle *h;
	struct gc_config cfg;
	__u32 key = 0;
	int ret;

	gcfp_clear_error(err);
	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "allocating a handle");
	h->routes_fd = h->stats_fd = h->delay_fd = h->media_fd = h->config_fd = h->state_fd = -1;
	ret = pin_dir_of(ifname, h->pin_dir, sizeof(h->pin_dir), 0, err);
	if (ret)
		goto fail;
	h->config_fd = obj_get(h->pin_dir, GC_PIN_CONFIG);
	if (h->config_fd < 0) {
		if (errno == ENOENT)
			ret = gcfp_fail(err, GCFP_ERR_NOT_ATTACHED, 0,
					"the fast path is not attached to %s (nothing pinned at %s)",
					ifname, h->pin_dir);
		else if (errno == EPERM || errno == EACCES)
			ret = gcfp_fail(err, GCFP_ERR_NOT_ROOT, errno,
					"the fast path needs root to open its pins (%s/%s)",
					h->pin_dir, GC_PIN_CONFIG);
		else
			ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "opening %s/%s", h->pin_dir,
					GC_PIN_CONFIG);
		goto fail;
	}
	if (bpf_map_lookup_elem(h->config_fd, &key, &cfg)) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "reading %s/%s", h->pin_dir, GC_PIN_CONFIG);
		goto fail;
	}
	if (cfg.abi_version != GC_ABI_VERSION) {
		ret = gcfp_fail(err, GCFP_ERR_ABI, 0,
				"%s was pinned with layout version %u, this loader has %u: detach and attach again",
				h->pin_dir, cfg.abi_version, GC_ABI_VERSION);
		goto fail;
	}
	h->routes_fd = obj_get(h->pin_dir, GC_PIN_ROUTES);
	h->stats_fd = obj_get(h->pin_dir, GC_PIN_STATS);
	h->delay_fd = obj_get(h->pin_dir, GC_PIN_DELAY);
	h->media_fd = obj_get(h->pin_dir, GC_PIN_MEDIA);
	h->state_fd = obj_get(h->pin_dir, GC_PIN_STATE);
	if (h->routes_fd < 0 || h->stats_fd < 0 || h->delay_fd < 0 || h->media_fd < 0 ||
	    h->state_fd < 0) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "opening the maps pinned in %s", h->pin_dir);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	gcfp_close(h);
	return ret;
}

int gcfp_status(const char *ifname, struct gcfp_status *st, struct gcfp_error *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, tc);
	struct gc_loader_state state;
	struct bpf_xdp_query_opts q;
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), key = 0, ssrc, *prev = NULL;
	struct gcfp_handle *h;
	struct gc_config cfg;
	unsigned int ifindex;
	int ret, fd;
	__u32 our_xdp = 0, our_tc = 0;

	memset(st, 0, sizeof(*st));
	ret = gcfp_open(ifname, &h, err);
	if (ret)
		return ret;
	snprintf(st->pin_dir, sizeof(st->pin_dir), "%s", h->pin_dir);
	if (bpf_map_lookup_elem(h->config_fd, &key, &cfg) || read_state(h->state_fd, &state)) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "reading %s", h->pin_dir);
		goto out;
	}
	st->port = cfg.port;
	st->echo = cfg.echo;
	st->ingress = cfg.ingress;
	st->ifindex = state.ifindex;
	if (!bpf_obj_get_info_by_fd(h->routes_fd, &info, &info_len))
		st->max_routes = info.max_entries;
	while (bpf_map_get_next_key(h->routes_fd, prev, &ssrc) == 0) {
		st->route_count++;
		prev = &ssrc;
	}

	fd = obj_get(h->pin_dir, GC_PIN_PROG_XDP);
	if (fd >= 0) {
		our_xdp = prog_id_of(fd);
		close(fd);
	}
	fd = obj_get(h->pin_dir, GC_PIN_PROG_TC);
	if (fd >= 0) {
		our_tc = prog_id_of(fd);
		close(fd);
	}
	ifindex = if_nametoindex(ifname);
	if (ifindex && ifindex == state.ifindex) {
		if (xdp_current(ifindex, &q) == 0 && q.prog_id == our_xdp && our_xdp) {
			st->xdp_prog_id = our_xdp;
			st->xdp_mode = q.attach_mode == XDP_ATTACHED_SKB ? GCFP_XDP_GENERIC
									 : GCFP_XDP_NATIVE;
		}
		hook.ifindex = ifindex;
		tc.handle = state.tc_handle;
		tc.priority = state.tc_priority;
		if (bpf_tc_query(&hook, &tc) == 0 && tc.prog_id == our_tc && our_tc)
			st->tc_prog_id = our_tc;
	}
	st->attached = st->tc_prog_id && (st->xdp_prog_id || cfg.ingress == GC_INGRESS_TC);
	ret = 0;
out:
	gcfp_close(h);
	return ret;
}

int gcfp_subscriber_init(struct gc_subscriber *s, uint8_t family, const void *addr,
			 uint16_t port, const uint8_t mac[6], uint32_t ifindex, uint16_t vlan_id,
			 struct gcfp_error *err)
{
	gcfp_clear_error(err);
	if (vlan_id > GC_VLAN_ID_MAX)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "subscriber VLAN id %u above %u", vlan_id,
				 GC_VLAN_ID_MAX);
	if (family != GC_FAMILY_IPV4 && family != GC_FAMILY_IPV6)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "subscriber family %u is not 4 or 6", family);
	if (!port)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "subscriber port 0");
	if (!ifindex)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "subscriber ifindex 0");
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->port = htons(port);
	s->ifindex = ifindex;
	s->vlan_id = vlan_id;
	memcpy(s->dst_mac, mac, 6);
	memcpy(s->addr, addr, family == GC_FAMILY_IPV4 ? 4 : 16);
	return 0;
}

static int if_mac(uint32_t ifindex, uint8_t mac[6])
{
	char name[IF_NAMESIZE];
	struct ifreq ifr = {};
	int fd, ret = 0;

	if (!if_indextoname(ifindex, name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		ret = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return ret;
}

static int alloc_percpu(size_t size, void **vals, int *ncpus, struct gcfp_error *err);

/* A zeroed media entry for @ssrc unless it has one: 1 if created, 0 if it
 * had one, -errno (-E2BIG: full). */
static int media_create(struct gcfp_handle *h, uint32_t ssrc)
{
	struct gc_media_counters *zero;
	int ncpus, ret = 1;

	if (alloc_percpu(sizeof(*zero), (void **)&zero, &ncpus, NULL))
		return -ENOMEM;
	if (bpf_map_update_elem(h->media_fd, &ssrc, zero, BPF_NOEXIST))
		ret = errno == EEXIST ? 0 : -errno;
	free(zero);
	return ret;
}

static int route_set(struct gcfp_handle *h, uint32_t ssrc, uint8_t family,
		     const void *origin_addr, uint16_t origin_port, uint16_t origin_vlan,
		     uint8_t stream_type, const struct gc_subscriber *subs, uint32_t n_subs,
		     uint32_t flags, struct gcfp_error *err)
{
	static const uint8_t zero_mac[6];
	struct gc_route *r;
	uint32_t i;
	int ret, created;

	gcfp_clear_error(err);
	if (family != GC_FAMILY_IPV4 && family != GC_FAMILY_IPV6)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "route family %u is not 4 or 6", family);
	if (!origin_port)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "origin port 0");
	if (origin_vlan > GC_VLAN_ID_MAX)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "origin VLAN id %u above %u", origin_vlan,
				 GC_VLAN_ID_MAX);
	if (stream_type < GC_STREAM_ASQ || stream_type > GC_STREAM_VHQ)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "stream type %u is not ASQ(1)/VSQ(2)/VHQ(3)",
				 stream_type);
	if (n_subs && !subs)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "%u subscribers but no array", n_subs);
	r = calloc(1, sizeof(*r));
	if (!r)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "allocating a route");
	r->family = family;
	memcpy(r->origin_addr, origin_addr, family == GC_FAMILY_IPV4 ? 4 : 16);
	r->origin_port = htons(origin_port);
	r->origin_vlan = origin_vlan;
	r->stream_type = stream_type;
	if (n_subs > GC_MAX_SUBSCRIBERS || (flags & GC_ROUTE_F_USERSPACE)) {
		r->flags = GC_ROUTE_F_USERSPACE;
		r->n_subs = 0;
	} else {
		r->n_subs = n_subs;
		for (i = 0; i < n_subs; i++) {
			const struct gc_subscriber *s = &subs[i];

			if (s->family != family) {
				ret = gcfp_fail(err, GCFP_ERR_INVALID, 0,
						"subscriber %u is IPv%u, the route is IPv%u", i, s->family,
						family);
				goto out;
			}
			if (!s->ifindex || !s->port || s->flags || s->reserved ||
			    s->vlan_id > GC_VLAN_ID_MAX) {
				ret = gcfp_fail(err, GCFP_ERR_INVALID, 0,
						"subscriber %u: ifindex and port must be set, flags and "
						"reserved zero, VLAN id %u at most %u", i, s->vlan_id,
						GC_VLAN_ID_MAX);
				goto out;
			}
			r->subs[i] = *s;
			if (!memcmp(s->src_mac, zero_mac, 6)) {
				ret = if_mac(s->ifindex, r->subs[i].src_mac);
				if (ret) {
					ret = gcfp_fail(err, ret == -ENXIO || ret == -ENODEV
							     ? GCFP_ERR_NO_DEVICE : GCFP_ERR_SYSTEM,
							-ret, "subscriber %u: MAC address of ifindex %u", i,
							s->ifindex);
					goto out;
				}
			}
		}
	}
	/* Its counters first (a replaced route keeps them): the program
	 * counts from the route's first packet. */
	created = media_create(h, ssrc);
	ret = created < 0 ? created : gcfp_route_install(h->routes_fd, ssrc, r);
	if (ret && created > 0)
		bpf_map_delete_elem(h->media_fd, &ssrc);
	if (ret) {
		ret = gcfp_fail(err, ret == -E2BIG ? GCFP_ERR_ROUTES_FULL : GCFP_ERR_SYSTEM, -ret,
				"installing the route of SSRC %u", ssrc);
		goto out;
	}
	ret = r->flags & GC_ROUTE_F_USERSPACE ? 1 : 0;
out:
	free(r);
	return ret;
}

int gcfp_route_install(int routes_fd, uint32_t ssrc, const struct gc_route *r)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_RDONLY_PROG);
	__u32 zero = 0;
	int fd, ret = 0;

	/* Published whole and never written again (frozen): a program run
	 * that found it sees exactly this route until the run ends. */
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "gc_route", sizeof(__u32), sizeof(*r), 1, &o);
	if (fd < 0)
		return -errno;
	if (bpf_map_update_elem(fd, &zero, r, BPF_ANY) || bpf_map_freeze(fd) ||
	    bpf_map_update_elem(routes_fd, &ssrc, &fd, BPF_ANY))
		ret = -errno;
	close(fd);
	return ret;
}

int gcfp_route_set(struct gcfp_handle *h, uint32_t ssrc, uint8_t family,
		   const void *origin_addr, uint16_t origin_port, uint16_t origin_vlan,
		   uint8_t stream_type, const struct gc_subscriber *subs, uint32_t n_subs,
		   struct gcfp_error *err)
{
	return route_set(h, ssrc, family, origin_addr, origin_port, origin_vlan, stream_type, subs,
			 n_subs, 0, err);
}

int gcfp_route_set_userspace(struct gcfp_handle *h, uint32_t ssrc, uint8_t family,
			     const void *origin_addr, uint16_t origin_port, uint16_t origin_vlan,
			     uint8_t stream_type, struct gcfp_error *err)
{
	return route_set(h, ssrc, family, origin_addr, origin_port, origin_vlan, stream_type, NULL,
			 0, GC_ROUTE_F_USERSPACE, err);
}

int gcfp_route_remove(struct gcfp_handle *h, uint32_t ssrc, struct gcfp_error *err)
{
	gcfp_clear_error(err);
	if (bpf_map_delete_elem(h->routes_fd, &ssrc))
		return gcfp_fail(err, errno == ENOENT ? GCFP_ERR_NO_ROUTE : GCFP_ERR_SYSTEM,
				 errno == ENOENT ? 0 : errno, "no route for SSRC %u", ssrc);
	/* Its counters go with it (none: the route predates them). */
	bpf_map_delete_elem(h->media_fd, &ssrc);
	return 0;
}

int gcfp_route_media(struct gcfp_handle *h, uint32_t ssrc, struct gc_media_counters *out,
		     struct gcfp_error *err)
{
	struct gc_media_counters *vals;
	int ret, ncpus, c;

	gcfp_clear_error(err);
	ret = alloc_percpu(sizeof(*vals), (void **)&vals, &ncpus, err);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(h->media_fd, &ssrc, vals)) {
		int e = errno;

		free(vals);
		return gcfp_fail(err, e == ENOENT ? GCFP_ERR_NO_ROUTE : GCFP_ERR_SYSTEM,
				 e == ENOENT ? 0 : e, "no media counters for SSRC %u", ssrc);
	}
	memset(out, 0, sizeof(*out));
	for (c = 0; c < ncpus; c++)
		gc_media_counters_add(out, &vals[c]);
	free(vals);
	return 0;
}

int gcfp_route_get(struct gcfp_handle *h, uint32_t ssrc, struct gc_route *out,
		   struct gcfp_error *err)
{
	__u32 id, zero = 0;
	int fd, e = 0, tries;

	gcfp_clear_error(err);
	/* The route map holds inner map ids for user space; a route replaced
	 * between the two lookups is looked up again. */
	for (tries = 0; tries < 8; tries++) {
		if (bpf_map_lookup_elem(h->routes_fd, &ssrc, &id)) {
			e = errno;
			break;
		}
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0) {
			e = errno;
			continue;
		}
		e = bpf_map_lookup_elem(fd, &zero, out) ? errno : 0;
		close(fd);
		if (!e)
			return 0;
	}
	return gcfp_fail(err, e == ENOENT ? GCFP_ERR_NO_ROUTE : GCFP_ERR_SYSTEM,
			 e == ENOENT ? 0 : e, "no route for SSRC %u", ssrc);
}

int gcfp_route_next(struct gcfp_handle *h, const uint32_t *prev, uint32_t *next,
		    struct gcfp_error *err)
{
	gcfp_clear_error(err);
	if (bpf_map_get_next_key(h->routes_fd, prev, next)) {
		if (errno == ENOENT)
			return 1;
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "iterating the routes");
	}
	return 0;
}

/* A zeroed buffer in *@vals for one per-CPU map value of @size per possible CPU (*@ncpus). */
static int alloc_percpu(size_t size, void **vals, int *ncpus, struct gcfp_error *err)
{
	*ncpus = libbpf_num_possible_cpus();
	if (*ncpus <= 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -*ncpus, "counting possible CPUs");
	*vals = calloc(*ncpus, size);
	if (!*vals)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "allocating per-CPU values");
	return 0;
}

int gcfp_stats(struct gcfp_handle *h, uint64_t out[GC_STAT_MAX], struct gcfp_error *err)
{
	__u64 *vals;
	int ret, ncpus, c;
	__u32 k;

	gcfp_clear_error(err);
	ret = alloc_percpu(sizeof(*vals), (void **)&vals, &ncpus, err);
	if (ret)
		return ret;
	for (k = 0; k < GC_STAT_MAX; k++) {
		if (bpf_map_lookup_elem(h->stats_fd, &k, vals)) {
			int e = errno;

			free(vals);
			return gcfp_fail(err, GCFP_ERR_SYSTEM, e, "reading counter %s", stat_names[k]);
		}
		out[k] = 0;
		for (c = 0; c < ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int gcfp_delay(struct gcfp_handle *h, struct gc_delay_hist *out, struct gcfp_error *err)
{
	struct gc_delay_hist *vals;
	int ret, ncpus, c;
	__u32 key = 0;

	gcfp_clear_error(err);
	ret = alloc_percpu(sizeof(*vals), (void **)&vals, &ncpus, err);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(h->delay_fd, &key, vals)) {
		int e = errno;

		free(vals);
		return gcfp_fail(err, GCFP_ERR_SYSTEM, e, "reading %s/%s", h->pin_dir, GC_PIN_DELAY);
	}
	memset(out, 0, sizeof(*out));
	for (c = 0; c < ncpus; c++)
		gc_delay_hist_add(out, &vals[c]);
	free(vals);
	return 0;
}
