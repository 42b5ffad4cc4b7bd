// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-helper - load the benchmark-only programs of bench.bpf.o.
 *
 *   bench-helper sink xdp|tc PIN NETNS:IFACE...
 *       Attach one sink instance (count + drop: native XDP, or TC ingress)
 *       to every IFACE (each in its network namespace /run/netns/NETNS) and
 *       pin its counter map at PIN. The attachments outlive this process.
 *   bench-helper count PIN
 *       Print the sum over CPUs of the pinned counter.
 *   bench-helper devmap NETNS IFACE PORT SSRC ORIGIN_IP ORIGIN_PORT ORIGIN_MAC \
 *                       SUBIFACE,MAC,IP,PORT...
 *       Attach the devmap-broadcast replicator to IFACE in NETNS: copies to
 *       each SUBIFACE (one subscriber per interface), echo to the origin.
 *   bench-helper fastpath[-tc] NETNS IFACE PORT SSRC ORIGIN_IP ORIGIN_PORT SUBIFACE,MAC,IP,PORT...
 *       Attach the fast path (bpf/groupcast.bpf.c as built here, through the
 *       loader library `groupcast xdp attach` uses) to IFACE in NETNS, echo
 *       on, and install the route of SSRC (IPv4, one subscriber each).
 *       fastpath: the XDP ingress (native XDP, then TC); fastpath-tc: the TC
 *       ingress (the TC program alone, GC_INGRESS_TC).
 *       `bench-helper fastpath-detach NETNS IFACE` detaches it. For measuring
 *       a change of the programs without rebuilding the Swift package.
 *   bench-helper floor NETNS IFACE SUBIFACE...
 *       Attach the clone floor (bench_clone_floor) at IFACE's TC ingress in
 *       NETNS: every frame received there is cloned, unchanged, to each
 *       SUBIFACE (in NETNS) and sent back out of IFACE.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "groupcast_fastpath.h"
#include "groupcast_layout.h"
#include "pkt.h"

static const char *obj_path(void)
{
	static char p[4096];
	ssize_t n = readlink("/proc/self/exe", p, sizeof(p) - 32);

	if (n <= 0)
		return "bench.bpf.o";
	p[n] = 0;
	strcpy(strrchr(p, '/') + 1, "bench.bpf.o");
	return p;
}

static int enter_netns(const char *ns)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "bench-helper: entering netns %s: %s\n", ns, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

static struct bpf_object *open_obj(const char *keep1, const char *keep2)
{
	struct bpf_object *obj = bpf_object__open_file(obj_path(), NULL);
	struct bpf_program *p;

	if (!obj) {
		fprintf(stderr, "bench-helper: opening %s: %s\n", obj_path(), strerror(errno));
		return NULL;
	}
	bpf_object__for_each_program(p, obj) {
		const char *n = bpf_program__name(p);

		bpf_program__set_autoload(p, !strcmp(n, keep1) || (keep2 && !strcmp(n, keep2)));
	}
	return obj;
}

/* Attach @fd at @ifn's TC ingress (in the current network namespace). */
static int attach_tc_ingress(int fd, const char *ifn)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = if_nametoindex(ifn),
			    .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = fd);
	int ret = bpf_tc_hook_create(&hook);

	if (!ret || ret == -EEXIST)
		ret = bpf_tc_attach(&hook, &o);
	return ret;
}

static int cmd_sink(const char *kind, int argc, char **argv)
{
	int tc = !strcmp(kind, "tc");
	const char *name = tc ? "bench_tc_sink" : "bench_sink";
	struct bpf_object *obj = open_obj(name, NULL);
	int i, fd, self;

	if (!obj || bpf_object__load(obj))
		return 1;
	fd = bpf_program__fd(bpf_object__find_program_by_name(obj, name));
	if (bpf_map__pin(bpf_object__find_map_by_name(obj, "sink_count"), argv[0])) {
		fprintf(stderr, "bench-helper: pinning %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	for (i = 1; i < argc; i++) {
		char *ns = argv[i], *ifn = strchr(ns, ':');
		int ret;

		if (!ifn)
			return 1;
		*ifn++ = 0;
		if (enter_netns(ns))
			return 1;
		if (tc)
			ret = attach_tc_ingress(fd, ifn);
		else
			ret = bpf_xdp_attach(if_nametoindex(ifn), fd, XDP_FLAGS_DRV_MODE, NULL);
		if (ret) {
			fprintf(stderr, "bench-helper: attaching the sink to %s in %s: %s\n", ifn, ns,
				strerror(-ret));
			return 1;
		}
		setns(self, CLONE_NEWNET);
	}
	return 0;
}

static int cmd_floor(int argc, char **argv)
{
	struct bpf_object *obj;
	__u32 zero = 0, n = argc - 2, i;
	int fd, ports_fd, cfg_fd, ret;

	if (argc < 3 || enter_netns(argv[0]))
		return 2;
	obj = open_obj("bench_clone_floor", NULL);
	if (!obj || bpf_object__load(obj))
		return 1;
	fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "bench_clone_floor"));
	ports_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "floor_ports"));
	cfg_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "floor_cfg"));
	for (i = 0; i < n; i++) {
		__u32 ifindex = if_nametoindex(argv[2 + i]);

		if (!ifindex || bpf_map_update_elem(ports_fd, &i, &ifindex, 0)) {
			fprintf(stderr, "bench-helper: floor copy to %s: %s\n", argv[2 + i],
				strerror(errno));
			return 1;
		}
	}
	if (bpf_map_update_elem(cfg_fd, &zero, &n, 0))
		return 1;
	ret = attach_tc_ingress(fd, argv[1]);
	if (ret) {
		fprintf(stderr, "bench-helper: attaching the floor to %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	return 0;
}

static int cmd_fastpath(int argc, char **argv, int ingress)
{
	struct gcfp_attach_opts o = { .echo = 1, .xdp_mode = GCFP_XDP_NATIVE, .ingress = ingress };
	struct gc_subscriber *subs;
	struct gcfp_handle *h;
	struct gcfp_error err;
	uint8_t origin[4], mac[6], a[4];
	int i, n = argc - 6, ret;

	if (argc < 7 || enter_netns(argv[0]) || inet_pton(AF_INET, argv[4], origin) != 1)
		return 2;
	o.ifname = argv[1];
	o.port = atoi(argv[2]);
	subs = calloc(n, sizeof(*subs));
	if (!subs || gcfp_attach(&o, &err) || gcfp_open(argv[1], &h, &err)) {
		fprintf(stderr, "bench-helper: fast path on %s: %s\n", argv[1],
			subs ? err.message : "out of memory");
		return 1;
	}
	for (i = 0; i < n; i++) {
		char buf[256], *f[4], *save = NULL;
		int k;

		snprintf(buf, sizeof(buf), "%s", argv[6 + i]);
		for (k = 0; k < 4; k++)
			if (!(f[k] = strtok_r(k ? NULL : buf, ",", &save)))
				return 2;
		if (parse_mac(f[1], mac) || inet_pton(AF_INET, f[2], a) != 1)
			return 2;
		if (gcfp_subscriber_init(&subs[i], GC_FAMILY_IPV4, a, atoi(f[3]), mac,
					 if_nametoindex(f[0]), 0, &err)) {
			fprintf(stderr, "bench-helper: subscriber %s: %s\n", argv[6 + i], err.message);
			return 1;
		}
	}
	ret = gcfp_route_set(h, strtoul(argv[3], NULL, 0), GC_FAMILY_IPV4, origin, atoi(argv[5]), 0,
			     GC_STREAM_ASQ, subs, n, &err);
	if (ret) {
		fprintf(stderr, "bench-helper: route: %s\n", ret < 0 ? err.message : "over the limit");
		return 1;
	}
	gcfp_close(h);
	free(subs);
	return 0;
}

static int cmd_fastpath_detach(int argc, char **argv)
{
	struct gcfp_error err;

	if (argc != 2 || enter_netns(argv[0]))
		return 2;
	if (gcfp_detach(argv[1], &err)) {
		fprintf(stderr, "bench-helper: detaching the fast path from %s: %s\n", argv[1],
			err.message);
		return 1;
	}
	return 0;
}

static int cmd_count(const char *pin)
{
	int fd = bpf_obj_get(pin), n = libbpf_num_possible_cpus(), i;
	__u64 v[512], sum = 0;
	__u32 k = 0;

	if (fd < 0 || n <= 0 || n > 512 || bpf_map_lookup_elem(fd, &k, v)) {
		fprintf(stderr, "bench-helper: reading %s: %s\n", pin, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("%llu\n", (unsigned long long)sum);
	return 0;
}

static int put_sub(int subs_fd, int ports_fd, int out_fd, const char *ifn, const uint8_t mac[6],
		   const char *ip, int port)
{
	struct gc_subscriber s = { .family = GC_FAMILY_IPV4 };
	struct bpf_devmap_val dv = {};
	__u32 ifindex = if_nametoindex(ifn);

	if (!ifindex || inet_pton(AF_INET, ip, s.addr) != 1 || if_mac(ifn, s.src_mac)) {
		fprintf(stderr, "bench-helper: bad subscriber %s %s\n", ifn, ip);
		return -1;
	}
	s.ifindex = ifindex;
	s.port = htons(port);
	memcpy(s.dst_mac, mac, 6);
	dv.ifindex = ifindex;
	dv.bpf_prog.fd = out_fd;
	if (bpf_map_update_elem(subs_fd, &ifindex, &s, 0) ||
	    bpf_map_update_elem(ports_fd, &ifindex, &dv, 0)) {
		fprintf(stderr, "bench-helper: devmap entry for %s: %s\n", ifn, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_devmap(int argc, char **argv)
{
	struct { __u32 addr; __u16 port, pad; } origin = {};
	struct bpf_object *obj;
	uint8_t mac[6];
	__u32 ssrc;
	int i, in_fd, out_fd, subs_fd, ports_fd, routes_fd, ret;

	if (argc < 8 || enter_netns(argv[0]))
		return 2;
	obj = open_obj("bench_devmap_in", "bench_devmap_out");
	if (!obj)
		return 1;
	{
		struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
		size_t sz;
		__u16 *port = rodata ? (__u16 *)bpf_map__initial_value(rodata, &sz) : NULL;

		if (!port)
			return 1;
		*port = atoi(argv[2]);
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "bench-helper: loading the devmap programs failed\n");
		return 1;
	}
	in_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "bench_devmap_in"));
	out_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "bench_devmap_out"));
	subs_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "dm_subs"));
	ports_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "dm_ports"));
	routes_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "dm_routes"));
	ssrc = strtoul(argv[3], NULL, 0);
	if (inet_pton(AF_INET, argv[4], &origin.addr) != 1 || parse_mac(argv[6], mac))
		return 2;
	origin.port = htons(atoi(argv[5]));
	if (bpf_map_update_elem(routes_fd, &ssrc, &origin, 0))
		return 1;
	/* The echo: the ingress device's entry leads back to the origin. */
	if (put_sub(subs_fd, ports_fd, out_fd, argv[1], mac, argv[4], atoi(argv[5])))
		return 1;
	for (i = 7; i < argc; i++) {
		char buf[256], *f[4], *save = NULL;
		int k;

		snprintf(buf, sizeof(buf), "%s", argv[i]);
		for (k = 0; k < 4; k++)
			if (!(f[k] = strtok_r(k ? NULL : buf, ",", &save)))
				return 2;
		if (parse_mac(f[1], mac) || put_sub(subs_fd, ports_fd, out_fd, f[0], mac, f[2], atoi(f[3])))
			return 1;
	}
	ret = bpf_xdp_attach(if_nametoindex(argv[1]), in_fd, XDP_FLAGS_DRV_MODE, NULL);
	if (ret) {
		fprintf(stderr, "bench-helper: attaching to %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "sink") &&
	    (!strcmp(argv[2], "xdp") || !strcmp(argv[2], "tc")))
		return cmd_sink(argv[2], argc - 3, argv + 3);
	if (argc == 3 && !strcmp(argv[1], "count"))
		return cmd_count(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "devmap"))
		return cmd_devmap(argc - 2, argv + 2);
	if (argc >= 9 && !strcmp(argv[1], "fastpath"))
		return cmd_fastpath(argc - 2, argv + 2, GC_INGRESS_XDP);
	if (argc >= 9 && !strcmp(argv[1], "fastpath-tc"))
		return cmd_fastpath(argc - 2, argv + 2, GC_INGRESS_TC);
	if (argc == 4 && !strcmp(argv[1], "fastpath-detach"))
		return cmd_fastpath_detach(argc - 2, argv + 2);
	if (argc >= 5 && !strcmp(argv[1], "floor"))
		return cmd_floor(argc - 2, argv + 2);
	fprintf(stderr, "usage: bench-helper sink xdp|tc PIN NETNS:IFACE... | count PIN | "
		"devmap NETNS IFACE PORT SSRC ORIGIN_IP ORIGIN_PORT ORIGIN_MAC SUB... | "
		"fastpath[-tc] NETNS IFACE PORT SSRC ORIGIN_IP ORIGIN_PORT SUB... | "
		"fastpath-detach NETNS IFACE | floor NETNS IFACE SUBIFACE...\n");
	return 2;
}
