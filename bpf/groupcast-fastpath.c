// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * groupcast-fastpath - a small CLI over the fast-path loader library, until
 * the Swift `groupcast xdp` subcommands exist. Exit status: 0 success,
 * 1 an operation failed (message on stderr), 2 usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupcast_fastpath.h"

static const char usage[] =
"usage: groupcast-fastpath COMMAND --dev IFACE [OPTIONS]\n"
"  attach  --dev IFACE --port PORT [--no-echo] [--mode auto|native|generic]\n"
"          [--max-routes N] [--verifier-log PATH]\n"
"  detach  --dev IFACE\n"
"  status  --dev IFACE\n"
"  stats   --dev IFACE\n"
"  routes list   --dev IFACE\n"
"  routes add    --dev IFACE --ssrc N --origin ADDR --origin-port PORT\n"
"                --type asq|vsq|vhq [--sub IFACE,MAC,ADDR,PORT]...\n"
"  routes remove --dev IFACE --ssrc N\n";

static const char *const type_names[] = { "?", "asq", "vsq", "vhq" };

static int die_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "groupcast-fastpath: %s\n", msg);
	fputs(usage, stderr);
	return 2;
}

static int report(const char *what, const struct gcfp_error *err)
{
	fprintf(stderr, "groupcast-fastpath: %s: %s (%s)\n", what, err->message,
		gcfp_code_name(err->code));
	return 1;
}

static int parse_u32(const char *s, unsigned long max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ADDR (IPv4 or IPv6) -> family + 16 bytes. */
static int parse_addr(const char *s, uint8_t *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = GC_FAMILY_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = GC_FAMILY_IPV6;
		return 0;
	}
	return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int i, n = 0;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) != 6 ||
	    s[n])
		return -1;
	for (i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -1;
		mac[i] = b[i];
	}
	return 0;
}

/* IFACE,MAC,ADDR,PORT */
static int parse_sub(const char *spec, struct gc_subscriber *s)
{
	char buf[256], *f[4], *save = NULL, *p;
	uint8_t family, addr[16], mac[6];
	uint32_t port, ifindex;
	struct gcfp_error err;
	int i;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (i = 0, p = buf; i < 4; i++, p = NULL) {
		f[i] = strtok_r(p, ",", &save);
		if (!f[i])
			goto bad;
	}
	if (strtok_r(NULL, ",", &save))
		goto bad;
	ifindex = if_nametoindex(f[0]);
	if (!ifindex) {
		fprintf(stderr, "groupcast-fastpath: --sub %s: no such device '%s'\n", spec, f[0]);
		return -1;
	}
	if (parse_mac(f[1], mac) || parse_addr(f[2], &family, addr) ||
	    parse_u32(f[3], 65535, &port) || !port)
		goto bad;
	if (gcfp_subscriber_init(s, family, addr, port, mac, ifindex, &err)) {
		fprintf(stderr, "groupcast-fastpath: --sub %s: %s\n", spec, err.message);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "groupcast-fastpath: --sub %s: expected IFACE,MAC,ADDR,PORT\n", spec);
	return -1;
}

static void print_addr(uint8_t family, const uint8_t *addr, char *buf, size_t size)
{
	inet_ntop(family == GC_FAMILY_IPV4 ? AF_INET : AF_INET6, addr, buf, size);
}

static int cmd_routes_list(const char *dev)
{
	struct gcfp_handle *h;
	struct gcfp_error err;
	struct gc_route *r;
	uint32_t ssrc, *prev = NULL;
	char a[INET6_ADDRSTRLEN], ifn[IF_NAMESIZE];
	int ret;

	if (gcfp_open(dev, &h, &err))
		return report("routes list", &err);
	r = malloc(sizeof(*r));
	if (!r) {
		gcfp_close(h);
		return 1;
	}
	while ((ret = gcfp_route_next(h, prev, &ssrc, &err)) == 0) {
		uint32_t i;

		prev = &ssrc;
		if (gcfp_route_get(h, ssrc, r, &err)) {
			if (err.code == GCFP_ERR_NO_ROUTE)	/* removed meanwhile */
				continue;
			break;
		}
		print_addr(r->family, r->origin_addr, a, sizeof(a));
		printf("ssrc %u type %s origin %s port %u subscribers %u%s\n", ssrc,
		       r->stream_type <= GC_STREAM_VHQ ? type_names[r->stream_type] : "?", a,
		       ntohs(r->origin_port), r->n_subs,
		       r->flags & GC_ROUTE_F_USERSPACE ? " userspace" : "");
		for (i = 0; i < r->n_subs && i < GC_MAX_SUBSCRIBERS; i++) {
			const struct gc_subscriber *s = &r->subs[i];

			print_addr(s->family, s->addr, a, sizeof(a));
			if (!if_indextoname(s->ifindex, ifn))
				snprintf(ifn, sizeof(ifn), "#%u", s->ifindex);
			printf("  %s %02x:%02x:%02x:%02x:%02x:%02x %s %u\n", ifn, s->dst_mac[0],
			       s->dst_mac[1], s->dst_mac[2], s->dst_mac[3], s->dst_mac[4],
			       s->dst_mac[5], a, ntohs(s->port));
		}
	}
	free(r);
	gcfp_close(h);
	if (ret < 0)
		return report("routes list", &err);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_DEV = 256, O_PORT, O_NO_ECHO, O_MODE, O_MAX_ROUTES, O_VLOG, O_SSRC, O_ORIGIN,
	       O_ORIGIN_PORT, O_TYPE, O_SUB };
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, O_DEV },
		{ "port", required_argument, NULL, O_PORT },
		{ "no-echo", no_argument, NULL, O_NO_ECHO },
		{ "mode", required_argument, NULL, O_MODE },
		{ "max-routes", required_argument, NULL, O_MAX_ROUTES },
		{ "verifier-log", required_argument, NULL, O_VLOG },
		{ "ssrc", required_argument, NULL, O_SSRC },
		{ "origin", required_argument, NULL, O_ORIGIN },
		{ "origin-port", required_argument, NULL, O_ORIGIN_PORT },
		{ "type", required_argument, NULL, O_TYPE },
		{ "sub", required_argument, NULL, O_SUB },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct gcfp_attach_opts ao = { .echo = 1 };
	struct gc_subscriber *subs = NULL;
	uint32_t n_subs = 0, ssrc = 0, v, origin_port = 0;
	uint8_t origin[16], family = 0, type = 0;
	int have_ssrc = 0, have_origin = 0, opt, nargs;
	const char *cmd, *sub = NULL, *dev = NULL;
	struct gcfp_error err;

	if (argc < 2)
		return die_usage(NULL);
	cmd = argv[1];
	nargs = 2;
	if (!strcmp(cmd, "routes")) {
		if (argc < 3)
			return die_usage("routes: expected list, add or remove");
		sub = argv[2];
		nargs = 3;
	}
	optind = nargs;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case O_DEV:
			dev = optarg;
			break;
		case O_PORT:
			if (parse_u32(optarg, 65535, &v) || !v)
				return die_usage("--port: expected 1..65535");
			ao.port = v;
			break;
		case O_NO_ECHO:
			ao.echo = 0;
			break;
		case O_MODE:
			if (!strcmp(optarg, "auto"))
				ao.xdp_mode = GCFP_XDP_AUTO;
			else if (!strcmp(optarg, "native"))
				ao.xdp_mode = GCFP_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				ao.xdp_mode = GCFP_XDP_GENERIC;
			else
				return die_usage("--mode: expected auto, native or generic");
			break;
		case O_MAX_ROUTES:
			if (parse_u32(optarg, 1u << 20, &v) || !v)
				return die_usage("--max-routes: expected 1..1048576");
			ao.max_routes = v;
			break;
		case O_VLOG:
			ao.verifier_log_path = optarg;
			break;
		case O_SSRC:
			if (parse_u32(optarg, UINT32_MAX, &ssrc))
				return die_usage("--ssrc: expected 0..4294967295");
			have_ssrc = 1;
			break;
		case O_ORIGIN:
			if (parse_addr(optarg, &family, origin))
				return die_usage("--origin: expected an IPv4 or IPv6 address");
			have_origin = 1;
			break;
		case O_ORIGIN_PORT:
			if (parse_u32(optarg, 65535, &origin_port) || !origin_port)
				return die_usage("--origin-port: expected 1..65535");
			break;
		case O_TYPE:
			for (type = GC_STREAM_ASQ; type <= GC_STREAM_VHQ; type++)
				if (!strcmp(optarg, type_names[type]))
					break;
			if (type > GC_STREAM_VHQ)
				return die_usage("--type: expected asq, vsq or vhq");
			break;
		case O_SUB: {
			struct gc_subscriber *p = realloc(subs, (n_subs + 1) * sizeof(*subs));

			if (!p)
				return 1;
			subs = p;
			if (parse_sub(optarg, &subs[n_subs]))
				return 2;
			n_subs++;
			break;
		}
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return die_usage(NULL);
		}
	}
	if (optind != argc)
		return die_usage("unexpected argument");
	if (!dev)
		return die_usage("--dev IFACE is required");

	if (!strcmp(cmd, "attach")) {
		if (!ao.port)
			return die_usage("attach: --port is required");
		ao.ifname = dev;
		if (gcfp_attach(&ao, &err))
			return report("attach", &err);
		return 0;
	}
	if (!strcmp(cmd, "detach")) {
		if (gcfp_detach(dev, &err))
			return report("detach", &err);
		return 0;
	}
	if (!strcmp(cmd, "status")) {
		struct gcfp_status st;

		if (gcfp_status(dev, &st, &err))
			return report("status", &err);
		printf("interface: %s\nattached: %s\nmode: %s\nxdp_prog_id: %u\ntc_prog_id: %u\n"
		       "port: %u\necho: %s\nroutes: %u\nmax_routes: %u\npin_dir: %s\n",
		       dev, st.attached ? "yes" : "no",
		       st.xdp_mode == GCFP_XDP_NATIVE ? "native" :
		       st.xdp_mode == GCFP_XDP_GENERIC ? "generic" : "none",
		       st.xdp_prog_id, st.tc_prog_id, st.port, st.echo ? "on" : "off",
		       st.route_count, st.max_routes, st.pin_dir);
		return 0;
	}
	if (!strcmp(cmd, "stats")) {
		struct gcfp_handle *h;
		uint64_t c[GC_STAT_MAX];
		unsigned int i;

		if (gcfp_open(dev, &h, &err))
			return report("stats", &err);
		if (gcfp_stats(h, c, &err)) {
			gcfp_close(h);
			return report("stats", &err);
		}
		gcfp_close(h);
		for (i = 0; i < GC_STAT_MAX; i++)
			printf("%s %llu\n", gcfp_stat_name(i), (unsigned long long)c[i]);
		return 0;
	}
	if (!strcmp(cmd, "routes") && !strcmp(sub, "list"))
		return cmd_routes_list(dev);
	if (!strcmp(cmd, "routes") && !strcmp(sub, "add")) {
		struct gcfp_handle *h;
		int ret;

		if (!have_ssrc || !have_origin || !origin_port || !type)
			return die_usage("routes add: --ssrc, --origin, --origin-port and --type are required");
		if (gcfp_open(dev, &h, &err))
			return report("routes add", &err);
		ret = gcfp_route_set(h, ssrc, family, origin, origin_port, type, subs, n_subs, &err);
		gcfp_close(h);
		free(subs);
		if (ret < 0)
			return report("routes add", &err);
		if (ret == 1)
			fprintf(stderr, "groupcast-fastpath: %u subscribers exceed the in-kernel fan-out "
				"limit of %u: SSRC %u is origin-checked in the kernel and replicated in "
				"user space\n", n_subs, GC_MAX_SUBSCRIBERS, ssrc);
		return 0;
	}
	if (!strcmp(cmd, "routes") && !strcmp(sub, "remove")) {
		struct gcfp_handle *h;
		int ret;

		if (!have_ssrc)
			return die_usage("routes remove: --ssrc is required");
		if (gcfp_open(dev, &h, &err))
			return report("routes remove", &err);
		ret = gcfp_route_remove(h, ssrc, &err);
		gcfp_close(h);
		if (ret)
			return report("routes remove", &err);
		return 0;
	}
	return die_usage("unknown command");
}
