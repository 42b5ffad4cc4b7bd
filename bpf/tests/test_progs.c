// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * test_progs - unit tests of the fast path through BPF_PROG_TEST_RUN, and
 * of the loader library. TAP output; the last line is kselftest's
 * "# Totals: pass:P fail:F ..." so scripts/lib/tally.sh can count it.
 *
 * Runs in a private network namespace (unshare at start: every device it
 * creates dies with it). XDP cases: a fixture table of input frame ->
 * verdict (+ the counter that must move); XDP never rewrites, so the output
 * must equal the input. TC cases: the program runs on a frame "received" on
 * veth gin0; its copies leave through veth pairs gsN -> grN and are captured
 * with AF_PACKET on grN; every copy and the echo (the program's output) are
 * compared byte for byte with frames built from scratch by pkt.h, and their
 * checksums are verified independently.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "groupcast_fastpath.h"
#include "groupcast_nexthop.h"
#include "../loader/internal.h"
#include "../generated/groupcast.skel.h"
#include "pkt.h"

#define SFU_PORT	5004
#define N_SUB_DEVS	4
#define FANOUT_MAX_SUBS	GC_MAX_SUBSCRIBERS

static int n_run, n_pass, n_fail, n_skip;
/* A test's return value: what it needs is not in this kernel (fail_msg says
 * what); it runs where it is (scripts/vm/guest). */
#define SKIPPED	1
static char fail_msg[512];

__attribute__((format(printf, 1, 2)))
static int failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

#define CHECK(cond, ...) do { if (!(cond)) return failf(__VA_ARGS__); } while (0)

static void report(const char *name, int ret)
{
	n_run++;
	if (ret == 0) {
		n_pass++;
		printf("ok %d %s\n", n_run, name);
	} else if (ret == SKIPPED) {
		n_skip++;
		printf("ok %d %s # SKIP %s\n", n_run, name, fail_msg);
	} else {
		n_fail++;
		printf("not ok %d %s # %s\n", n_run, name, fail_msg);
	}
	fflush(stdout);
	fail_msg[0] = 0;
}

/* ---- environment -------------------------------------------------------- */

static struct groupcast *skel_echo, *skel_noecho;
/* Loaded with gc_cfg.ingress = GC_INGRESS_TC: the TC program is the first judge. */
static struct groupcast *skel_tcin;
static int ifi_in, ifi_sub[N_SUB_DEVS], cap_fd[N_SUB_DEVS];
static uint8_t mac_sub_dev[N_SUB_DEVS][6];	/* MAC of gsN (the copies' source) */

static const uint8_t MAC_SFU[6] = { 0x02, 0x5f, 0x00, 0x00, 0x00, 0xfe };
static const uint8_t MAC_ORIGIN[6] = { 0x02, 0x0a, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t V4_SFU[4] = { 10, 0, 0, 254 };
static const uint8_t V4_ORIGIN[4] = { 10, 0, 0, 1 };
static const uint8_t V6_SFU[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe };
static const uint8_t V6_ORIGIN[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
#define ORIGIN_PORT	4000
#define SSRC_V4		0x11110001u
#define SSRC_V6		0x11110006u
#define SSRC_FANOUT	0x11110100u
#define SSRC_UNKNOWN	0x0badbeefu
/* VLANs: the SFU has VLAN devices for 10 and 20 on its interface (in the
 * local map, as the loader writes them), with an address on each; the
 * origin of SSRC_V10 registered through VLAN 10. VLAN 30 has no device. */
#define VLAN_A		10
#define VLAN_B		20
#define VLAN_NONE	30
#define SSRC_V10	0x11110010u
static const uint8_t V4_SFU_A[4] = { 10, 10, 0, 254 };
static const uint8_t V4_SFU_B[4] = { 10, 20, 0, 254 };
static const uint8_t V4_ORIGIN_A[4] = { 10, 10, 0, 1 };

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(val, f);
	return fclose(f);
}

static int open_capture(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd, one = 1, buf = 8 << 20;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -1;
	sll.sll_ifindex = if_nametoindex(ifname);
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One captured frame, with a VLAN tag the receive path took off put back. */
static ssize_t capture_one(int fd, uint8_t *out, size_t size)
{
	char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	uint8_t raw[PKT_MAX];
	struct iovec iov = { raw, sizeof(raw) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;

	n = recvmsg(fd, &msg, 0);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		struct tpacket_auxdata *aux = (void *)CMSG_DATA(c);
		uint16_t tpid;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
			continue;
		if (!(aux->tp_status & TP_STATUS_VLAN_VALID) || n < 12 || (size_t)n + 4 > size)
			continue;
		tpid = aux->tp_status & TP_STATUS_VLAN_TPID_VALID ? aux->tp_vlan_tpid : 0x8100;
		memcpy(out, raw, 12);
		out[12] = tpid >> 8;
		out[13] = tpid & 0xff;
		out[14] = aux->tp_vlan_tci >> 8;
		out[15] = aux->tp_vlan_tci & 0xff;
		memcpy(out + 16, raw + 12, n - 12);
		return n + 4;
	}
	if ((size_t)n > size)
		return -1;
	memcpy(out, raw, n);
	return n;
}

struct frame {
	uint8_t b[PKT_MAX];
	size_t len;
};

/* Collect up to @max frames from @fd: wait up to 2 s for @want, then
 * 50 ms more for any extra. */
static int capture(int fd, struct frame *fr, int max, int want)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = 0, timeout = 2000;

	while (n < max) {
		ssize_t len;

		if (poll(&p, 1, n >= want ? 50 : timeout) <= 0)
			break;
		len = capture_one(fd, fr[n].b, sizeof(fr[n].b));
		if (len < 0)
			continue;
		fr[n++].len = len;
	}
	return n;
}

static void drain(int fd)
{
	uint8_t b[PKT_MAX];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

static int setup_netns(void)
{
	char name[IFNAMSIZ];
	int i;

	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return -1;
	}
	/* No IPv6 autoconfiguration chatter on the capture devices. */
	if (write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1") ||
	    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"))
		fprintf(stderr, "# warning: cannot disable IPv6 autoconf\n");
	if (sh("ip link set lo up") || sh("ip link add gin0 type veth peer name gin1") ||
	    sh("ip link set gin0 up") || sh("ip link set gin1 up"))
		return -1;
	ifi_in = if_nametoindex("gin0");
	for (i = 0; i < N_SUB_DEVS; i++) {
		if (sh("ip link add gs%d type veth peer name gr%d", i, i) ||
		    sh("ip link set gs%d up && ip link set gr%d up", i, i))
			return -1;
		snprintf(name, sizeof(name), "gs%d", i);
		ifi_sub[i] = if_nametoindex(name);
		if (if_mac(name, mac_sub_dev[i]))
			return -1;
		snprintf(name, sizeof(name), "gr%d", i);
		cap_fd[i] = open_capture(name);
		if (cap_fd[i] < 0) {
			perror("AF_PACKET capture");
			return -1;
		}
	}
	return 0;
}

/* VLAN_A and VLAN_B served, with V4_SFU_A/V4_SFU_B on them, as the loader
 * records VLAN devices (gcfp_local_addrs). */
static int local_add_vlans(int map_fd)
{
	struct gc_local_addr va = { .family = GC_FAMILY_VLAN, .vlan_id = VLAN_A };
	struct gc_local_addr vb = { .family = GC_FAMILY_VLAN, .vlan_id = VLAN_B };
	struct gc_local_addr aa = { .family = GC_FAMILY_IPV4, .vlan_id = VLAN_A };
	struct gc_local_addr ab = { .family = GC_FAMILY_IPV4, .vlan_id = VLAN_B };
	uint8_t one = 1;

	memcpy(aa.addr, V4_SFU_A, 4);
	memcpy(ab.addr, V4_SFU_B, 4);
	return bpf_map_update_elem(map_fd, &va, &one, 0) || bpf_map_update_elem(map_fd, &vb, &one, 0) ||
	       bpf_map_update_elem(map_fd, &aa, &one, 0) || bpf_map_update_elem(map_fd, &ab, &one, 0);
}

static struct groupcast *load_skel(int echo, int ingress)
{
	struct groupcast *s = groupcast__open();

	if (!s)
		return NULL;
	s->rodata->gc_cfg.port = SFU_PORT;
	s->rodata->gc_cfg.echo = echo;
	s->rodata->gc_cfg.ingress = ingress;
	memcpy(s->rodata->gc_cfg.mac, MAC_SFU, 6);
	if (groupcast__load(s)) {
		groupcast__destroy(s);
		return NULL;
	}
	{
		struct gc_local_addr a4 = { .family = 4 }, a6 = { .family = 6 };
		uint8_t one = 1;

		memcpy(a4.addr, V4_SFU, 4);
		memcpy(a6.addr, V6_SFU, 16);
		if (bpf_map_update_elem(bpf_map__fd(s->maps.gc_local), &a4, &one, 0) ||
		    bpf_map_update_elem(bpf_map__fd(s->maps.gc_local), &a6, &one, 0) ||
		    local_add_vlans(bpf_map__fd(s->maps.gc_local))) {
			groupcast__destroy(s);
			return NULL;
		}
	}
	return s;
}

/* The delay histogram summed over CPUs; its bucket counts must add up to its count. */
static int delay_read(struct groupcast *s, struct gc_delay_hist *out)
{
	int ncpu = libbpf_num_possible_cpus(), c, b;
	struct gc_delay_hist *vals;
	__u32 key = 0;
	uint64_t in_buckets = 0;

	if (ncpu <= 0)
		return -1;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals || bpf_map_lookup_elem(bpf_map__fd(s->maps.gc_delay), &key, vals)) {
		free(vals);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	for (c = 0; c < ncpu; c++)
		gc_delay_hist_add(out, &vals[c]);
	free(vals);
	for (b = 0; b < GC_DELAY_BUCKETS; b++)
		in_buckets += out->buckets[b];
	return in_buckets == out->count ? 0 : -1;
}

static int stats_read(struct groupcast *s, uint64_t out[GC_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), c;
	uint64_t vals[512];
	__u32 k;

	if (ncpu <= 0 || ncpu > 512)
		return -1;
	for (k = 0; k < GC_STAT_MAX; k++) {
		if (bpf_map_lookup_elem(bpf_map__fd(s->maps.gc_stats), &k, vals))
			return -1;
		out[k] = 0;
		for (c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	return 0;
}

/* The counters that changed between @a and @b must be exactly @want
 * (pairs of stat, delta, terminated by -1). */
static int stats_expect(const uint64_t *a, const uint64_t *b, ...)
{
	int64_t want[GC_STAT_MAX] = {};
	va_list ap;
	int k;

	va_start(ap, b);
	while ((k = va_arg(ap, int)) >= 0)
		want[k] = va_arg(ap, int);
	va_end(ap);
	for (k = 0; k < GC_STAT_MAX; k++)
		CHECK((int64_t)(b[k] - a[k]) == want[k], "counter %s moved by %lld, want %lld",
		      gcfp_stat_name(k), (long long)(b[k] - a[k]), (long long)want[k]);
	return 0;
}

/* ---- routes ------------------------------------------------------------- */

struct sub_def {
	int dev;		/* index into ifi_sub, or -1 for a missing ifindex */
	uint8_t family;
	uint8_t addr[16];
	uint16_t port;
	uint8_t mac[6];
	uint16_t vlan;		/* the tag its copies carry, 0: none */
};

static void sub_def_v4(struct sub_def *d, int dev, int i)
{
	memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->family = 4;
	d->addr[0] = 10;
	d->addr[1] = 1 + i / 250;
	d->addr[2] = dev < 0 ? 99 : dev;
	d->addr[3] = 1 + i % 250;
	d->port = 6000 + i;
	memcpy(d->mac, (uint8_t[]){ 0x02, 0xaa, dev & 0xff, 0, i >> 8, i & 0xff }, 6);
}

static void sub_def_v6(struct sub_def *d, int dev, int i)
{
	memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->family = 6;
	d->addr[0] = 0xfd;
	d->addr[1] = 0x01;
	d->addr[13] = dev;
	d->addr[14] = i >> 8;
	d->addr[15] = (i & 0xff) + 1;
	d->port = 6000 + i;
	memcpy(d->mac, (uint8_t[]){ 0x02, 0xbb, dev & 0xff, 0, i >> 8, i & 0xff }, 6);
}

static void route_fill(struct gc_route *r, uint8_t family, const uint8_t *origin, uint16_t oport,
		       const struct sub_def *defs, int n, uint32_t flags)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->family = family;
	memcpy(r->origin_addr, origin, family == 4 ? 4 : 16);
	r->origin_port = htons(oport);
	r->stream_type = GC_STREAM_ASQ;
	r->flags = flags;
	r->n_subs = n;
	for (i = 0; i < n; i++) {
		struct gc_subscriber *e = &r->subs[i];
		const struct sub_def *d = &defs[i];

		e->ifindex = d->dev < 0 ? 0x7ffffff0 : ifi_sub[d->dev];
		e->port = htons(d->port);
		e->family = d->family;
		memcpy(e->dst_mac, d->mac, 6);
		if (d->dev >= 0)
			memcpy(e->src_mac, mac_sub_dev[d->dev], 6);
		memcpy(e->addr, d->addr, 16);
		e->vlan_id = d->vlan;
	}
}

/* Install @r as the route of @ssrc, as the loader does. */
static int route_write(struct groupcast *s, uint32_t ssrc, const struct gc_route *r)
{
	int ret = gcfp_route_install(bpf_map__fd(s->maps.gc_routes), ssrc, r);

	if (ret)
		errno = -ret;
	return ret;
}

static int route_put(struct groupcast *s, uint32_t ssrc, uint8_t family, const uint8_t *origin,
		     uint16_t oport, const struct sub_def *defs, int n, uint32_t flags)
{
	struct gc_route *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -1;
	route_fill(r, family, origin, oport, defs, n, flags);
	ret = route_write(s, ssrc, r);
	free(r);
	return ret;
}

/* ---- frames ------------------------------------------------------------- */

static uint8_t payload_buf[1500];

/* The media frame the origin sends to the SFU. */
static void spec_media(struct pkt_spec *s, int family, uint32_t ssrc, uint16_t vlan, size_t media)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->dmac, MAC_SFU, 6);
	memcpy(s->smac, MAC_ORIGIN, 6);
	s->vlan_tci = vlan;
	s->family = family;
	memcpy(s->saddr, family == 4 ? V4_ORIGIN : V6_ORIGIN, family == 4 ? 4 : 16);
	memcpy(s->daddr, family == 4 ? V4_SFU : V6_SFU, family == 4 ? 4 : 16);
	s->sport = ORIGIN_PORT;
	s->dport = SFU_PORT;
	s->ttl = 61;
	s->ip_id = 0x1234;
	s->payload = payload_buf;
	s->payload_len = rtp_build(payload_buf, ssrc, 77, 96, media);
}

/* What subscriber @d must receive for @in: from the SFU (address/port the
 * origin sent to, MAC of the egress device) to @d. */
static size_t expect_copy(const struct pkt_spec *in, const struct sub_def *d, uint8_t *buf)
{
	struct pkt_spec s = *in;

	memcpy(s.dmac, d->mac, 6);
	memcpy(s.smac, mac_sub_dev[d->dev], 6);
	memcpy(s.saddr, in->daddr, 16);
	memcpy(s.daddr, d->addr, 16);
	s.sport = in->dport;
	s.dport = d->port;
	s.vlan_tci = d->vlan;
	return pkt_build(&s, buf, NULL);
}

static size_t expect_echo(const struct pkt_spec *in, uint8_t *buf)
{
	struct pkt_spec s = *in;

	memcpy(s.dmac, in->smac, 6);
	memcpy(s.smac, in->dmac, 6);
	memcpy(s.saddr, in->daddr, 16);
	memcpy(s.daddr, in->saddr, 16);
	s.sport = in->dport;
	s.dport = in->sport;
	return pkt_build(&s, buf, NULL);
}

static void hexdiff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i;

	for (i = 0; i < alen && i < blen; i++)
		if (a[i] != b[i]) {
			failf("length %zu/%zu, first difference at byte %zu: got %02x want %02x",
			      alen, blen, i, a[i], b[i]);
			return;
		}
	failf("length %zu, want %zu", alen, blen);
}

static int frame_eq(const uint8_t *got, size_t glen, const uint8_t *want, size_t wlen,
		    const char *what)
{
	const char *why;

	if (glen != wlen || memcmp(got, want, wlen)) {
		char m[256];

		hexdiff(got, glen, want, wlen);
		snprintf(m, sizeof(m), "%.255s", fail_msg);
		return failf("%s: %s", what, m);
	}
	if (pkt_check_csums(got, glen, &why))
		return failf("%s: %s", what, why);
	return 0;
}

/* ---- XDP fixtures ------------------------------------------------------- */

enum mut {
	M_NONE, M_WRONG_ADDR, M_WRONG_PORT, M_OTHER_PORT, M_ARP, M_TRUNC_L3HDR, M_TRUNC_L3,
	M_BAD_IHL, M_BAD_VERSION, M_TOTLEN_LT_IHL, M_FRAG_FIRST, M_FRAG_LATER, M_BAD_RTP_VER,
	M_UDPLEN_LONG, M_UDPLEN_SHORT, M_V6_ZERO_CSUM, M_V6_FRAG, M_V6_HBH, M_PAD, M_RTCP,
	M_SHORT_RTP, M_TCP, M_IP_CSUM, M_UDP_CSUM_BAD, M_UDP_CSUM_PSEUDO, M_RTP_CSRC, M_RTP_EXT,
	M_RTP_PAD0, M_RTP_PADBIG, M_RTP_EXT_PAD_OK, M_MAC_OTHER, M_MAC_BCAST, M_DST_OTHER,
	M_DST_BCAST, M_SRC_LOOP, M_DST_MCAST6, M_UDPLEN_SHORT_OK,
};

struct xdp_case {
	const char *name;
	int family;
	uint16_t vlan;
	uint32_t ssrc;
	enum mut mut;
	uint8_t ip_opts;
	int verdict;
	int stat;	/* counter that must move by 1 (besides rx), -1: none */
	int rx;		/* GC_STAT_RX moves by 1 */
	/* What the other data paths do with the frame (bpf/tests/corpus/README):
	 * socket: the socket backends (the kernel's receive, then the SFU's
	 * parser and routing); ring: the AF_XDP ring core. */
	const char *socket;
	const char *ring;
};

struct corpus_frame {
	char name[128];
	char socket[16];
	int verdict, stat, rx;
	uint8_t f[PKT_MAX];
	size_t len;
};

static const struct xdp_case xdp_cases[] = {
	{ "xdp: ipv4 media of a registered stream -> pass to tc", 4, 0, SSRC_V4, M_NONE, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: ipv6 media -> pass to tc", 6, 0, SSRC_V6, M_NONE, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: rtp with extension and padding within the packet -> pass to tc", 4, 0, SSRC_V4, M_RTP_EXT_PAD_OK, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: ethernet padding after the datagram -> pass to tc", 4, 0, SSRC_V4, M_PAD, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: ipv4 media on a vlan without a vlan device -> drop", 4, 100, SSRC_V4, M_NONE, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN), 1, "kernel", "vlan" },
	{ "xdp: ipv6 media on a vlan without a vlan device -> drop", 6, 4094, SSRC_V6, M_NONE, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN), 1, "kernel", "vlan" },
	{ "xdp: spoofed source on a vlan without a vlan device -> drop", 4, 7, SSRC_V4, M_WRONG_ADDR, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN), 1, "kernel", "vlan" },
	{ "xdp: malformed rtp on a vlan without a vlan device -> drop as vlan", 4, 7, SSRC_V4, M_BAD_RTP_VER, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN), 1, "kernel", "vlan" },
	{ "xdp: ipv4 with options (ihl 8) -> pass to the stack", 4, 0, SSRC_V4, M_NONE, 12, XDP_PASS, GC_STAT_PASS_IP_OPTIONS, 1, "forward", "ip_options" },
	{ "xdp: spoofed source address -> drop", 4, 0, SSRC_V4, M_WRONG_ADDR, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED), 1, "spoofed", "spoofed" },
	{ "xdp: spoofed source port -> drop", 4, 0, SSRC_V4, M_WRONG_PORT, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED), 1, "spoofed", "spoofed" },
	{ "xdp: ipv6 spoofed source address -> drop", 6, 0, SSRC_V6, M_WRONG_ADDR, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED), 1, "spoofed", "spoofed" },
	{ "xdp: registered ssrc over ipv6 for an ipv4 origin -> drop", 6, 0, SSRC_V4, M_NONE, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED), 1, "spoofed", "spoofed" },
	{ "xdp: unknown ssrc -> pass to user space", 4, 0, SSRC_UNKNOWN, M_NONE, 0, XDP_PASS, GC_STAT_PASS_UNKNOWN_SSRC, 1, "unknown_ssrc", "unknown_ssrc" },
	{ "xdp: route over the fan-out limit -> pass to user space", 4, 0, SSRC_FANOUT, M_NONE, 0, XDP_PASS, GC_STAT_PASS_FANOUT_LIMIT, 1, "forward", "forward" },
	{ "xdp: rtcp on the media port -> pass to user space", 4, 0, SSRC_V4, M_RTCP, 0, XDP_PASS, GC_STAT_PASS_RTCP, 1, "rtcp", "rtcp" },
	{ "xdp: ipv6 hop-by-hop header -> pass to user space", 6, 0, SSRC_V6, M_V6_HBH, 0, XDP_PASS, GC_STAT_PASS_IPV6_EXT, 1, "forward", "ipv6_ext" },
	{ "xdp: udp to another port -> pass, not counted", 4, 0, SSRC_V4, M_OTHER_PORT, 0, XDP_PASS, -1, 0, "none", "none" },
	{ "xdp: tcp -> pass, not counted", 4, 0, SSRC_V4, M_TCP, 0, XDP_PASS, -1, 0, "none", "none" },
	{ "xdp: arp -> pass, not counted", 4, 0, SSRC_V4, M_ARP, 0, XDP_PASS, -1, 0, "none", "none" },
	{ "xdp: later ipv4 fragment -> pass (no port to see)", 4, 0, SSRC_V4, M_FRAG_LATER, 0, XDP_PASS, -1, 0, "none", "none" },
	{ "xdp: truncated ipv4 header -> drop", 4, 0, SSRC_V4, M_TRUNC_L3HDR, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_TRUNCATED), 1, "kernel", "none" },
	{ "xdp: ipv4 total length beyond the frame -> drop", 4, 0, SSRC_V4, M_TRUNC_L3, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_TRUNCATED), 1, "kernel", "none" },
	{ "xdp: ipv6 payload length beyond the frame -> drop", 6, 0, SSRC_V6, M_TRUNC_L3, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_TRUNCATED), 1, "kernel", "none" },
	{ "xdp: truncated rtp header -> drop", 4, 0, SSRC_V4, M_SHORT_RTP, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_TRUNCATED), 1, "truncated", "truncated" },
	{ "xdp: ipv4 ihl 4 -> drop", 4, 0, SSRC_V4, M_BAD_IHL, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_IP_HEADER), 1, "kernel", "none" },
	{ "xdp: ip version 5 in an ipv4 frame -> drop", 4, 0, SSRC_V4, M_BAD_VERSION, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_IP_HEADER), 1, "kernel", "none" },
	{ "xdp: ipv4 total length below ihl -> drop", 4, 0, SSRC_V4, M_TOTLEN_LT_IHL, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_IP_HEADER), 1, "kernel", "none" },
	{ "xdp: ipv4 header checksum wrong -> drop", 4, 0, SSRC_V4, M_IP_CSUM, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_IP_CHECKSUM), 1, "kernel", "none" },
	{ "xdp: first ipv4 fragment to the port -> drop", 4, 0, SSRC_V4, M_FRAG_FIRST, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_FRAGMENT), 1, "kernel", "fragment" },
	{ "xdp: first ipv6 fragment to the port -> drop", 6, 0, SSRC_V6, M_V6_FRAG, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_FRAGMENT), 1, "kernel", "fragment" },
	{ "xdp: rtp version 1 -> drop", 4, 0, SSRC_V4, M_BAD_RTP_VER, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_RTP_VERSION), 1, "bad_rtp_version", "bad_rtp_version" },
	{ "xdp: rtp csrc list past the end -> drop", 4, 0, SSRC_V4, M_RTP_CSRC, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_RTP_HEADER), 1, "bad_rtp_header", "bad_rtp_header" },
	{ "xdp: rtp header extension past the end -> drop", 4, 0, SSRC_V4, M_RTP_EXT, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_RTP_HEADER), 1, "bad_rtp_header", "bad_rtp_header" },
	{ "xdp: rtp padding count 0 -> drop", 4, 0, SSRC_V4, M_RTP_PAD0, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_RTP_HEADER), 1, "bad_rtp_header", "bad_rtp_header" },
	{ "xdp: rtp padding count past the header -> drop", 6, 0, SSRC_V6, M_RTP_PADBIG, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_BAD_RTP_HEADER), 1, "bad_rtp_header", "bad_rtp_header" },
	{ "xdp: udp length above ip payload -> drop", 4, 0, SSRC_V4, M_UDPLEN_LONG, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_UDP_LENGTH), 1, "kernel", "udp_length" },
	{ "xdp: ipv6 udp length above ip payload -> drop", 6, 0, SSRC_V6, M_UDPLEN_LONG, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_UDP_LENGTH), 1, "kernel", "udp_length" },
	{ "xdp: udp length below ip payload, checksum not over it -> pass to the stack", 4, 0, SSRC_V4, M_UDPLEN_SHORT, 0, XDP_PASS, GC_STAT_PASS_UDP_CSUM, 1, "kernel", "udp_csum" },
	{ "xdp: udp length below ip payload, checksum over it -> pass to tc (trimmed, as udp_rcv)", 4, 0, SSRC_V4, M_UDPLEN_SHORT_OK, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: ipv6 udp length below ip payload, checksum over it -> pass to tc", 6, 0, SSRC_V6, M_UDPLEN_SHORT_OK, 0, XDP_PASS, GC_STAT_RX_MEDIA, 1, "forward", "forward" },
	{ "xdp: ipv6 udp checksum 0 -> drop", 6, 0, SSRC_V6, M_V6_ZERO_CSUM, 0, XDP_DROP, GC_STAT_DROP(GC_DROP_UDP_CSUM_ZERO6), 1, "kernel", "udp_csum_zero6" },
	{ "xdp: ipv4 udp checksum wrong -> pass to the stack (which drops it)", 4, 0, SSRC_V4, M_UDP_CSUM_BAD, 0, XDP_PASS, GC_STAT_PASS_UDP_CSUM, 1, "kernel", "udp_csum" },
	{ "xdp: ipv6 udp checksum wrong -> pass to the stack", 6, 0, SSRC_V6, M_UDP_CSUM_BAD, 0, XDP_PASS, GC_STAT_PASS_UDP_CSUM, 1, "kernel", "udp_csum" },
	{ "xdp: udp checksum = pseudo-header sum -> pass to the stack", 4, 0, SSRC_V4, M_UDP_CSUM_PSEUDO, 0, XDP_PASS, GC_STAT_PASS_UDP_CSUM, 1, "kernel", "udp_csum" },
	{ "xdp: ethernet destination another host -> pass to the stack", 4, 0, SSRC_V4, M_MAC_OTHER, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "kernel", "not_local" },
	{ "xdp: ethernet broadcast -> pass to the stack", 4, 0, SSRC_V4, M_MAC_BCAST, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "forward", "not_local" },
	{ "xdp: ip destination not the sfu's -> pass to the stack", 4, 0, SSRC_V4, M_DST_OTHER, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "kernel", "not_local" },
	{ "xdp: ipv6 destination not the sfu's -> pass to the stack", 6, 0, SSRC_V6, M_DST_OTHER, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "kernel", "not_local" },
	{ "xdp: ip broadcast to the sfu's mac -> pass to the stack", 4, 0, SSRC_V4, M_DST_BCAST, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "forward", "not_local" },
	{ "xdp: loopback source -> pass to the stack", 4, 0, SSRC_V4, M_SRC_LOOP, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "kernel", "not_local" },
	{ "xdp: ipv6 multicast destination -> pass to the stack", 6, 0, SSRC_V6, M_DST_MCAST6, 0, XDP_PASS, GC_STAT_PASS_NOT_LOCAL, 1, "forward", "not_local" },
};

/* Recompute the IPv4 header checksum after a mutation of the header. */
static void ip4_fix_csum(uint8_t *ip)
{
	size_t hl = (ip[0] & 0x0f) * 4;
	uint16_t c;

	ip[10] = ip[11] = 0;
	c = ~csum_fold32(csum_add_bytes(0, ip, hl));
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Insert an 8-byte IPv6 extension header (@type) right after the IPv6 header. */
static size_t v6_insert_ext(uint8_t *f, size_t len, const struct pkt_layout *lay, uint8_t type)
{
	uint8_t *ip = f + lay->l3, *ext = f + lay->l4;
	uint16_t plen = (ip[4] << 8 | ip[5]) + 8;

	memmove(ext + 8, ext, len - lay->l4);
	memset(ext, 0, 8);
	ext[0] = ip[6];		/* next header: UDP */
	if (type == 44) {
		ext[2] = 0;
		ext[3] = 1;	/* offset 0, M = 1 */
		ext[7] = 42;	/* id */
	}
	ip[6] = type;
	put16(ip + 4, plen);
	return len + 8;
}

static size_t xdp_case_frame(const struct xdp_case *c, uint8_t *f, struct pkt_spec *spec)
{
	struct pkt_layout lay;
	size_t len;
	uint8_t *u;

	spec_media(spec, c->family, c->ssrc, c->vlan, 40);
	spec->ip_opts_len = c->ip_opts;
	if (c->mut == M_WRONG_ADDR)
		spec->saddr[c->family == 4 ? 3 : 15] ^= 0x80;
	if (c->mut == M_WRONG_PORT)
		spec->sport++;
	if (c->mut == M_OTHER_PORT)
		spec->dport = SFU_PORT + 1;
	if (c->mut == M_RTCP)
		payload_buf[1] = 200;	/* SR */
	if (c->mut == M_BAD_RTP_VER)
		payload_buf[0] = 0x40;
	if (c->mut == M_SHORT_RTP)
		spec->payload_len = 8;
	switch (c->mut) {	/* the RTP header (payload: 12 + 40 bytes) */
	case M_RTP_CSRC:
		payload_buf[0] |= 0x0f;		/* 60 bytes of CSRCs */
		break;
	case M_RTP_EXT:
		payload_buf[0] |= 0x10;
		payload_buf[14] = 0;
		payload_buf[15] = 16;		/* 64 bytes of extension */
		break;
	case M_RTP_PAD0:
		payload_buf[0] |= 0x20;
		payload_buf[51] = 0;
		break;
	case M_RTP_PADBIG:
		payload_buf[0] |= 0x20;
		payload_buf[51] = 41;		/* 40 bytes after the header */
		break;
	case M_RTP_EXT_PAD_OK:
		payload_buf[0] |= 0x30;
		payload_buf[14] = 0;
		payload_buf[15] = 2;		/* header 12 + 4 + 8 */
		payload_buf[51] = 28;		/* the rest */
		break;
	case M_MAC_OTHER:
		spec->dmac[5] ^= 1;
		break;
	case M_MAC_BCAST:
		memset(spec->dmac, 0xff, 6);
		break;
	case M_DST_OTHER:
		spec->daddr[c->family == 4 ? 3 : 15] ^= 0x40;
		break;
	case M_DST_BCAST:
		memset(spec->daddr, 0xff, 4);
		break;
	case M_SRC_LOOP:
		memcpy(spec->saddr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
		break;
	case M_DST_MCAST6:
		memcpy(spec->daddr, (uint8_t[]){ 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 16);
		break;
	default:
		break;
	}
	len = pkt_build(spec, f, &lay);
	u = f + lay.l4;
	switch (c->mut) {
	case M_ARP:
		f[12] = 0x08;
		f[13] = 0x06;
		len = 42;
		break;
	case M_TCP:
		f[lay.l3 + 9] = 6;
		break;
	case M_PAD:
		memset(f + len, 0, 10);
		len += 10;
		break;
	case M_TRUNC_L3HDR:
		len = lay.l3 + 10;
		break;
	case M_TRUNC_L3:
		len -= 4;
		break;
	case M_BAD_IHL:
		f[lay.l3] = 0x44;
		break;
	case M_BAD_VERSION:
		f[lay.l3] = 0x55;
		break;
	case M_TOTLEN_LT_IHL:
		put16(f + lay.l3 + 2, 16);
		break;
	case M_FRAG_FIRST:
		put16(f + lay.l3 + 6, 0x2000);
		break;
	case M_FRAG_LATER:
		put16(f + lay.l3 + 6, 0x0010);
		break;
	case M_UDPLEN_LONG:
		put16(u + 4, (u[4] << 8 | u[5]) + 4);
		break;
	case M_UDPLEN_SHORT:
		put16(u + 4, (u[4] << 8 | u[5]) - 4);
		break;
	case M_V6_ZERO_CSUM:
		u[6] = u[7] = 0;
		break;
	case M_V6_FRAG:
		len = v6_insert_ext(f, len, &lay, 44);
		break;
	case M_V6_HBH:
		len = v6_insert_ext(f, len, &lay, 0);
		break;
	case M_IP_CSUM:
		f[lay.l3 + 10] ^= 0x01;
		break;
	case M_UDPLEN_SHORT_OK: {
		/* The last 4 bytes become padding inside the IP payload. */
		uint16_t ulen = (u[4] << 8 | u[5]) - 4, ck;

		put16(u + 4, ulen);
		u[6] = u[7] = 0;
		ck = ~udp_sum(c->family, spec->saddr, spec->daddr, u, ulen);
		put16(u + 6, ck ? ck : 0xffff);
		break;
	}
	case M_UDP_CSUM_BAD:
		u[7] ^= 0x55;
		break;
	case M_UDP_CSUM_PSEUDO: {
		/* What a local sender's offloaded checksum looks like: the
		 * folded pseudo-header sum, nothing else. */
		uint16_t ulen = u[4] << 8 | u[5], ps;

		ps = csum_fold32(csum_add_bytes(csum_add_bytes(17 + (uint32_t)ulen, spec->saddr, 4),
						spec->daddr, 4));
		u[6] = ps >> 8;
		u[7] = ps & 0xff;
		break;
	}
	default:
		break;
	}
	/* Header mutations that are not about the header checksum keep it right. */
	if (c->family == 4 && (c->mut == M_FRAG_FIRST || c->mut == M_FRAG_LATER || c->mut == M_TCP))
		ip4_fix_csum(f + lay.l3);
	return len;
}

/* After the corpus: every datagram the XDP program dropped is in rx (the
 * per-copy reasons are TC's and count copies). */
static int t_drops_within_rx(void)
{
	uint64_t v[GC_STAT_MAX], drops = 0;
	int k;

	CHECK(stats_read(skel_echo, v) == 0, "reading counters");
	for (k = 0; k < GC_DROP_MAX; k++)
		if (k != GC_DROP_FAMILY && k != GC_DROP_SEND_FAILED && k != GC_DROP_REWRITE_FAILED &&
		    k != GC_DROP_HEAD_DROP)
			drops += v[GC_STAT_DROP(k)];
	CHECK(drops > 0, "the corpus dropped nothing");
	CHECK(drops <= v[GC_STAT_RX], "%llu drops, rx %llu", (unsigned long long)drops,
	      (unsigned long long)v[GC_STAT_RX]);
	return 0;
}

static int udp_payload_off(const uint8_t *f, size_t len);

static int run_xdp_case(const struct corpus_frame *c)
{
	uint8_t out[PKT_MAX];
	const uint8_t *in = c->f;
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	const struct gc_xdp_meta *meta;
	size_t len = c->len, meta_len;
	int media, u;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int ret;

	CHECK(stats_read(skel_echo, before) == 0, "reading counters");
	ret = bpf_prog_test_run_opts(bpf_program__fd(skel_echo->progs.groupcast_xdp), &o);
	CHECK(ret == 0, "BPF_PROG_TEST_RUN: %s", strerror(errno));
	CHECK((int)o.retval == c->verdict, "verdict %u, want %d", o.retval, c->verdict);
	/* Media handed to TC carries the XDP program's vouch and receive time
	 * in front of the frame (struct gc_xdp_meta); test runs return the
	 * metadata too. */
	meta_len = o.data_size_out > len ? o.data_size_out - len : 0;
	meta = (const struct gc_xdp_meta *)out;
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	media = after[GC_STAT_RX_MEDIA] != before[GC_STAT_RX_MEDIA];
	CHECK(meta_len == (media ? sizeof(*meta) : 0), "%zu bytes of metadata, want %zu", meta_len,
	      media ? sizeof(*meta) : 0);
	CHECK(!meta_len || (meta->magic == GC_XDP_META_MAGIC && meta->rx_ns != 0),
	      "metadata without the receive time");
	if (meta_len) {
		/* The vouch names this load's key, the interface (a test run
		 * without a context: the namespace's loopback) and the datagram. */
		u = udp_payload_off(in, len) - 8;
		CHECK(u > 0, "media without a UDP header");
		CHECK(meta->key && meta->key == skel_echo->bss->gc_meta_key, "vouch key %#llx, the load's %#llx",
		      (unsigned long long)meta->key, (unsigned long long)skel_echo->bss->gc_meta_key);
		CHECK(meta->ifindex == if_nametoindex("lo"), "vouch ifindex %u, want lo's", meta->ifindex);
		CHECK(meta->udp_len == ((in[u + 4] << 8) | in[u + 5]) &&
		      !memcmp(&meta->udp_check, in + u + 6, 2) &&
		      meta->ssrc == ((uint32_t)in[u + 16] << 24 | in[u + 17] << 16 | in[u + 18] << 8 | in[u + 19]),
		      "the vouch names another datagram (len %u check %#x ssrc %#x)", meta->udp_len,
		      meta->udp_check, meta->ssrc);
	}
	CHECK(o.data_size_out == len + meta_len && !memcmp(in, out + meta_len, len),
	      "XDP changed the frame");
	if (c->stat >= 0 && c->rx)
		return stats_expect(before, after, GC_STAT_RX, 1, c->stat, 1, -1);
	if (c->stat >= 0)
		return stats_expect(before, after, c->stat, 1, -1);
	return stats_expect(before, after, -1);
}

/* The routes of the XDP fixtures (the corpus and the VLAN cases) on @s. */
static int fixture_routes(struct groupcast *s)
{
	struct sub_def defs[1];
	struct gc_route *r10;
	int ret;

	sub_def_v4(&defs[0], 0, 0);
	if (route_put(s, SSRC_V4, 4, V4_ORIGIN, ORIGIN_PORT, defs, 1, 0) ||
	    route_put(s, SSRC_FANOUT, 4, V4_ORIGIN, ORIGIN_PORT, NULL, 0, GC_ROUTE_F_USERSPACE))
		return -1;
	sub_def_v6(&defs[0], 0, 0);
	if (route_put(s, SSRC_V6, 6, V6_ORIGIN, ORIGIN_PORT, defs, 1, 0))
		return -1;
	/* The stream of the origin that registered through VLAN 10. */
	sub_def_v4(&defs[0], 0, 0);
	defs[0].vlan = VLAN_B;
	r10 = calloc(1, sizeof(*r10));
	if (!r10)
		return -1;
	route_fill(r10, 4, V4_ORIGIN_A, ORIGIN_PORT, defs, 1, 0);
	r10->origin_vlan = VLAN_A;
	ret = route_write(s, SSRC_V10, r10);
	free(r10);
	return ret;
}

struct tc_run;
static int tc_run(struct groupcast *s, const uint8_t *in, size_t len, struct tc_run *r);

/* What the comparisons below saw, summed (GC_INGRESS_TC's counters). */
static uint64_t tcin_seen[GC_STAT_MAX];

/*
 * GC_INGRESS_TC: the TC program alone (skel_tcin) gives @f the verdict, the
 * counters (every one, rx, rx_media and pass_* among them) and the copies
 * that the XDP program and the TC program behind it give it (skel_echo, the
 * TC program run only on what XDP passes; an XDP drop is a TC shot).
 */
static int tc_ingress_same(const uint8_t *f, size_t len);
static int t_tc_ingress_covered(void);

/* ---- the corpus ----------------------------------------------------------- */

/*
 * bpf/tests/corpus/frames.txt: the fixture table above as frames, one per
 * line, labelled with what each data path must do with it. This program
 * writes it (--write-corpus) and reads it back for the XDP cases; test_ring
 * runs it through the ring core and the Swift ParserTests through
 * RTPHeader.parse (bpf/tests/corpus/README.md).
 */
/* Offset of the UDP payload in @f, or -1 (not UDP, or cut short). */
static int udp_payload_off(const uint8_t *f, size_t len)
{
	size_t l3 = 14, l4;
	uint8_t nh;
	int i;

	if (len < 14)
		return -1;
	if (f[12] == 0x81 && f[13] == 0x00)
		l3 += 4;
	if (len < l3 + 20)
		return -1;
	if ((f[l3 - 2] << 8 | f[l3 - 1]) == 0x0800) {
		if (f[l3 + 9] != 17)
			return -1;
		l4 = l3 + (f[l3] & 0x0f) * 4;
	} else if ((f[l3 - 2] << 8 | f[l3 - 1]) == 0x86dd) {
		l4 = l3 + 40;
		nh = f[l3 + 6];
		for (i = 0; i < 4 && (nh == 0 || nh == 43 || nh == 60 || nh == 44) && l4 + 8 <= len; i++) {
			size_t hl = nh == 44 ? 8 : (f[l4 + 1] + 1) * 8;

			nh = f[l4];
			l4 += hl;
		}
		if (nh != 17)
			return -1;
	} else {
		return -1;
	}
	return l4 + 8 <= len ? (int)(l4 + 8) : -1;
}

static void fmt_ip(char *out, size_t size, int family, const uint8_t *a)
{
	inet_ntop(family == 4 ? AF_INET : AF_INET6, a, out, size);
}

/* The corpus as text; the caller frees it. */
static char *corpus_text(void)
{
	size_t n = sizeof(xdp_cases) / sizeof(xdp_cases[0]), i, j, cap = 1 << 20, len = 0;
	char *t = malloc(cap), a[64], b[64];
	uint8_t f[PKT_MAX];
	struct pkt_spec spec;

	if (!t)
		return NULL;
#define OUT(...) (len += snprintf(t + len, cap - len, __VA_ARGS__))
	OUT("# bpf/tests/corpus/frames.txt: generated by bpf/.output/test_progs --write-corpus from\n"
	    "# its fixture table (bpf/tests/test_progs.c); do not edit. Format: bpf/tests/corpus/README.md\n");
	OUT("@port %u\n@sfu_mac %02x:%02x:%02x:%02x:%02x:%02x\n", SFU_PORT, MAC_SFU[0], MAC_SFU[1],
	    MAC_SFU[2], MAC_SFU[3], MAC_SFU[4], MAC_SFU[5]);
	fmt_ip(a, sizeof(a), 4, V4_SFU);
	fmt_ip(b, sizeof(b), 6, V6_SFU);
	OUT("@sfu_ipv4 %s\n@sfu_ipv6 %s\n", a, b);
	fmt_ip(a, sizeof(a), 4, V4_ORIGIN);
	fmt_ip(b, sizeof(b), 6, V6_ORIGIN);
	OUT("@route 0x%08x 4 %s %u\n@route 0x%08x 6 %s %u\n@route 0x%08x 4 %s %u userspace\n",
	    SSRC_V4, a, ORIGIN_PORT, SSRC_V6, b, ORIGIN_PORT, SSRC_FANOUT, a, ORIGIN_PORT);
	for (i = 0; i < n; i++) {
		const struct xdp_case *c = &xdp_cases[i];
		size_t fl = xdp_case_frame(c, f, &spec);

		OUT("%s\t%s\t%s\t%d\t%s\t%s\t%d\t", c->name, c->verdict == XDP_DROP ? "drop" : "pass",
		    c->stat >= 0 ? gcfp_stat_name(c->stat) : "-", c->rx, c->socket, c->ring,
		    udp_payload_off(f, fl));
		for (j = 0; j < fl; j++)
			OUT("%02x", f[j]);
		OUT("\n");
	}
#undef OUT
	return t;
}

static struct corpus_frame corpus[128];
static size_t n_corpus;

static int stat_by_name(const char *name)
{
	int k;

	for (k = 0; k < GC_STAT_MAX; k++)
		if (!strcmp(gcfp_stat_name(k), name))
			return k;
	return -1;
}

static int corpus_load(const char *path)
{
	FILE *fp = fopen(path, "r");
	static char line[2 * PKT_MAX + 512];

	if (!fp)
		return -1;
	n_corpus = 0;
	while (fgets(line, sizeof(line), fp) && n_corpus < sizeof(corpus) / sizeof(corpus[0])) {
		struct corpus_frame *c = &corpus[n_corpus];
		char *field[CORPUS_FIELDS];

		if (corpus_line(line, field, c->f, &c->len))
			continue;
		snprintf(c->name, sizeof(c->name), "%s", field[0]);
		snprintf(c->socket, sizeof(c->socket), "%s", field[4]);
		c->verdict = !strcmp(field[1], "drop") ? XDP_DROP : XDP_PASS;
		c->stat = strcmp(field[2], "-") ? stat_by_name(field[2]) : -1;
		c->rx = atoi(field[3]);
		n_corpus++;
	}
	fclose(fp);
	return 0;
}

static int t_corpus_current(void)
{
	char *want = corpus_text(), *got;
	FILE *fp = fopen(corpus_path(), "r");
	size_t n;
	int ret = 0;

	if (!want || !fp) {
		free(want);
		if (fp)
			fclose(fp);
		return failf("cannot read %s", corpus_path());
	}
	got = calloc(1, 1 << 20);
	n = got ? fread(got, 1, (1 << 20) - 1, fp) : 0;
	fclose(fp);
	if (!got || n != strlen(want) || memcmp(got, want, n))
		ret = failf("%s differs from the fixture table: run bpf/.output/test_progs "
			    "--write-corpus and commit it", corpus_path());
	free(got);
	free(want);
	return ret;
}

/* ---- TC cases ------------------------------------------------------------ */

struct tc_run {
	uint32_t retval;
	uint8_t out[PKT_MAX];
	size_t out_len;
};

static int tc_run(struct groupcast *s, const uint8_t *in, size_t len, struct tc_run *r)
{
	struct __sk_buff ctx = { .ifindex = ifi_in };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);
	int i;

	for (i = 0; i < N_SUB_DEVS; i++)
		drain(cap_fd[i]);
	if (bpf_prog_test_run_opts(bpf_program__fd(s->progs.groupcast_tc), &o))
		return failf("BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->retval = o.retval;
	r->out_len = o.data_size_out;
	return 0;
}

static int tc_ingress_same(const uint8_t *f, size_t len)
{
	uint64_t a0[GC_STAT_MAX], a1[GC_STAT_MAX], b0[GC_STAT_MAX], b1[GC_STAT_MAX];
	static struct frame ga[4], gb[4];
	static struct tc_run r;
	uint8_t out[PKT_MAX];
	int va, vb, na = 0, nb = 0, k, i;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);

	CHECK(stats_read(skel_echo, a0) == 0, "reading counters");
	CHECK(bpf_prog_test_run_opts(bpf_program__fd(skel_echo->progs.groupcast_xdp), &o) == 0,
	      "BPF_PROG_TEST_RUN (xdp): %s", strerror(errno));
	if (o.retval == XDP_PASS) {
		if (tc_run(skel_echo, f, len, &r))
			return -1;
		va = r.retval;
	} else {
		CHECK(o.retval == XDP_DROP, "xdp verdict %u", o.retval);
		va = TC_ACT_SHOT;
	}
	CHECK(stats_read(skel_echo, a1) == 0, "reading counters");
	if (a1[GC_STAT_FORWARDED] != a0[GC_STAT_FORWARDED])
		na = capture(cap_fd[0], ga, 4, (int)(a1[GC_STAT_FORWARDED] - a0[GC_STAT_FORWARDED]));

	CHECK(stats_read(skel_tcin, b0) == 0, "reading counters");
	if (tc_run(skel_tcin, f, len, &r)) {
		/* A frame shorter than an IPv4 header after Ethernet: the
		 * test run makes no skb of it. */
		if (errno == EINVAL && va == TC_ACT_SHOT && len < ETH_HLEN + 20) {
			failf("BPF_PROG_TEST_RUN makes no skb of a %zu-byte frame; the e2e tc ingress corpus run sends it", len);
			return SKIPPED;
		}
		return -1;
	}
	vb = r.retval;
	CHECK(stats_read(skel_tcin, b1) == 0, "reading counters");
	if (b1[GC_STAT_FORWARDED] != b0[GC_STAT_FORWARDED] || na)
		nb = capture(cap_fd[0], gb, 4, (int)(b1[GC_STAT_FORWARDED] - b0[GC_STAT_FORWARDED]));

	CHECK(va == vb, "tc ingress verdict %d, xdp+tc %d", vb, va);
	for (k = 0; k < GC_STAT_MAX; k++) {
		CHECK(b1[k] - b0[k] == a1[k] - a0[k],
		      "counter %s moved by %lld with tc ingress, %lld with xdp+tc", gcfp_stat_name(k),
		      (long long)(b1[k] - b0[k]), (long long)(a1[k] - a0[k]));
		tcin_seen[k] += b1[k] - b0[k];
	}
	CHECK(na == nb, "%d copies with tc ingress, %d with xdp+tc", nb, na);
	for (i = 0; i < na; i++)
		CHECK(ga[i].len == gb[i].len && !memcmp(ga[i].b, gb[i].b, ga[i].len),
		      "copy %d differs between tc ingress and xdp+tc", i);
	return 0;
}

static int t_tc_ingress_covered(void)
{
	uint64_t drops = 0;
	int k;

	for (k = 0; k < GC_DROP_MAX; k++)
		drops += tcin_seen[GC_STAT_DROP(k)];
	CHECK(tcin_seen[GC_STAT_RX_MEDIA] && tcin_seen[GC_STAT_FORWARDED] &&
	      tcin_seen[GC_STAT_ECHOED], "no media replicated");
	CHECK(drops && tcin_seen[GC_STAT_PASS_UDP_CSUM] && tcin_seen[GC_STAT_PASS_NOT_LOCAL] &&
	      tcin_seen[GC_STAT_PASS_UNKNOWN_SSRC] && tcin_seen[GC_STAT_PASS_FANOUT_LIMIT] &&
	      tcin_seen[GC_STAT_RX] > tcin_seen[GC_STAT_RX_MEDIA],
	      "drops %llu, pass_udp_csum %llu, pass_not_local %llu", (unsigned long long)drops,
	      (unsigned long long)tcin_seen[GC_STAT_PASS_UDP_CSUM],
	      (unsigned long long)tcin_seen[GC_STAT_PASS_NOT_LOCAL]);
	return 0;
}

/* The first half of a TC test: installs @ssrc's route from the origin of
 * @family to the @n subscribers @defs on @s, reads the counters into @before,
 * and runs the frame @in through the TC program into @r. */
static int tc_route_run(struct groupcast *s, uint32_t ssrc, int family, const struct sub_def *defs,
			int n, const uint8_t *in, size_t len, uint64_t before[GC_STAT_MAX],
			struct tc_run *r)
{
	CHECK(route_put(s, ssrc, family, family == 4 ? V4_ORIGIN : V6_ORIGIN, ORIGIN_PORT,
			defs, n, 0) == 0, "installing the route: %s", strerror(errno));
	CHECK(stats_read(s, before) == 0, "reading counters");
	return tc_run(s, in, len, r);
}

/* Every subscriber in @defs on device @dev got exactly its copy of @in. */
static int check_copies(const struct pkt_spec *in, const struct sub_def *defs, int n, int dev)
{
	static struct frame got[FANOUT_MAX_SUBS + 8];
	int want = 0, i, j, cnt;
	uint8_t exp[PKT_MAX];

	for (i = 0; i < n; i++)
		want += defs[i].dev == dev;
	cnt = capture(cap_fd[dev], got, FANOUT_MAX_SUBS + 8, want);
	CHECK(cnt == want, "gr%d captured %d frames, want %d", dev, cnt, want);
	/* Copies leave in subscriber order. */
	for (i = 0, j = 0; i < n; i++) {
		size_t elen;
		char what[64];

		if (defs[i].dev != dev)
			continue;
		elen = expect_copy(in, &defs[i], exp);
		snprintf(what, sizeof(what), "copy for subscriber %d on gr%d", i, dev);
		if (frame_eq(got[j].b, got[j].len, exp, elen, what))
			return -1;
		j++;
	}
	return 0;
}

static int check_all_copies(const struct pkt_spec *in, const struct sub_def *defs, int n)
{
	int d;

	for (d = 0; d < N_SUB_DEVS; d++)
		if (check_copies(in, defs, n, d))
			return -1;
	return 0;
}

static int tc_forward(int family, uint16_t vlan, int zero_csum, int echo)
{
	struct groupcast *s = echo ? skel_echo : skel_noecho;
	uint32_t ssrc = family == 4 ? SSRC_V4 : SSRC_V6;
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	static struct gc_delay_hist delay_before, delay_after;
	uint8_t in[PKT_MAX], exp[PKT_MAX];
	struct sub_def defs[3];
	struct pkt_spec spec;
	struct tc_run r;
	size_t len, elen;
	int i;

	for (i = 0; i < 3; i++) {
		if (family == 4)
			sub_def_v4(&defs[i], i, i);
		else
			sub_def_v6(&defs[i], i, i);
	}
	spec_media(&spec, family, ssrc, vlan, 160);
	spec.zero_csum = zero_csum;
	len = pkt_build(&spec, in, NULL);
	CHECK(delay_read(s, &delay_before) == 0, "reading the delay histogram");
	if (tc_route_run(s, ssrc, family, defs, 3, in, len, before, &r))
		return -1;
	/* One delay sample per replicated packet (the TC program's own start:
	 * a test run has no XDP metadata). */
	CHECK(delay_read(s, &delay_after) == 0, "delay histogram: bucket counts != count");
	CHECK(delay_after.count == delay_before.count + 1, "delay samples %llu, want %llu",
	      (unsigned long long)delay_after.count, (unsigned long long)delay_before.count + 1);
	if (echo) {
		CHECK(r.retval == TC_ACT_REDIRECT, "verdict %u, want TC_ACT_REDIRECT", r.retval);
		elen = expect_echo(&spec, exp);
		if (frame_eq(r.out, r.out_len, exp, elen, "echo"))
			return -1;
	} else {
		CHECK(r.retval == TC_ACT_SHOT, "verdict %u, want TC_ACT_SHOT", r.retval);
	}
	if (check_all_copies(&spec, defs, 3))
		return -1;
	CHECK(stats_read(s, after) == 0, "reading counters");
	return echo ? stats_expect(before, after, GC_STAT_FORWARDED, 3, GC_STAT_ECHOED, 1, -1)
		    : stats_expect(before, after, GC_STAT_FORWARDED, 3, GC_STAT_CONSUMED, 1, -1);
}

static int t_tc_v4(void) { return tc_forward(4, 0, 0, 1); }
static int t_tc_v6(void) { return tc_forward(6, 0, 0, 1); }
/*
 * VLANs (issue 13): the origin check includes the tag, each copy carries its
 * next hop's tag, a VLAN without a device here is dropped. XDP verdicts for
 * frames built for the VLAN fixture of local_add_vlans().
 */
struct vlan_case {
	const char *name;
	uint16_t tci;		/* 0: untagged; else the tag (PCP and VLAN id) */
	uint16_t tpid;		/* 0: 802.1Q */
	uint32_t ssrc;
	const uint8_t *saddr, *daddr;
	int verdict, stat;
};

static const struct vlan_case vlan_cases[] = {
	{ "xdp vlan: media of the vlan-10 origin on vlan 10 -> pass to tc", VLAN_A, 0, SSRC_V10,
	  V4_ORIGIN_A, V4_SFU_A, XDP_PASS, GC_STAT_RX_MEDIA },
	{ "xdp vlan: the vlan-10 origin's address from vlan 20 -> drop as spoofed", VLAN_B, 0,
	  SSRC_V10, V4_ORIGIN_A, V4_SFU_B, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED) },
	{ "xdp vlan: the vlan-10 origin's address untagged -> drop as spoofed", 0, 0, SSRC_V10,
	  V4_ORIGIN_A, V4_SFU, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED) },
	{ "xdp vlan: an untagged origin's address from vlan 10 -> drop as spoofed", VLAN_A, 0,
	  SSRC_V4, V4_ORIGIN, V4_SFU_A, XDP_DROP, GC_STAT_DROP(GC_DROP_SPOOFED) },
	{ "xdp vlan: vlan 10 to the untagged lan's address -> pass to the stack", VLAN_A, 0,
	  SSRC_V10, V4_ORIGIN_A, V4_SFU, XDP_PASS, GC_STAT_PASS_NOT_LOCAL },
	{ "xdp vlan: vlan 30 (no vlan device) -> drop as vlan", VLAN_NONE, 0, SSRC_V10,
	  V4_ORIGIN_A, V4_SFU_A, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN) },
	{ "xdp vlan: 802.1ad tag of a served id -> drop as vlan", VLAN_A, 0x88a8, SSRC_V10,
	  V4_ORIGIN_A, V4_SFU_A, XDP_DROP, GC_STAT_DROP(GC_DROP_VLAN) },
	{ "xdp vlan: priority tag (vlan 0, pcp 5) on the untagged lan -> pass to tc", 0xa000, 0,
	  SSRC_V4, V4_ORIGIN, V4_SFU, XDP_PASS, GC_STAT_RX_MEDIA },
};

static size_t vlan_case_frame(const struct vlan_case *c, uint8_t *f, struct pkt_spec *spec)
{
	size_t len;

	spec_media(spec, 4, c->ssrc, c->tci, 40);
	memcpy(spec->saddr, c->saddr, 4);
	memcpy(spec->daddr, c->daddr, 4);
	len = pkt_build(spec, f, NULL);
	if (c->tpid) {
		f[12] = c->tpid >> 8;
		f[13] = c->tpid & 0xff;
	}
	return len;
}

static int run_vlan_case(const struct vlan_case *c)
{
	struct corpus_frame *fr = calloc(1, sizeof(*fr));
	struct pkt_spec spec;
	int ret;

	if (!fr)
		return failf("out of memory");
	fr->len = vlan_case_frame(c, fr->f, &spec);
	fr->verdict = c->verdict;
	fr->stat = c->stat;
	fr->rx = 1;
	ret = run_xdp_case(fr);
	free(fr);
	return ret;
}

/* SSRC_V10 media from the VLAN-10 origin's address, tagged @vlan (in the
 * frame, as a test run gives it), to @daddr: its spec, the counters before,
 * and TC's run. */
static int tc_vlan_run(uint16_t vlan, const uint8_t *daddr, size_t media, struct pkt_spec *spec,
		       uint64_t before[GC_STAT_MAX], struct tc_run *res)
{
	uint8_t in[PKT_MAX];
	size_t len;

	spec_media(spec, 4, SSRC_V10, vlan, media);
	memcpy(spec->saddr, V4_ORIGIN_A, 4);
	memcpy(spec->daddr, daddr, 4);
	len = pkt_build(spec, in, NULL);
	CHECK(stats_read(skel_echo, before) == 0, "reading counters");
	return tc_run(skel_echo, in, len, res);
}

/* Media on VLAN 10 (tag in the frame, as a test run gives it) to four
 * subscribers: on VLAN 10, untagged, on VLAN 20, and on VLAN 20 again
 * through the first device: every copy with its own tag (the captures put
 * back what the receive path took off), TC alone. */
static int t_tc_vlan_copies(void)
{
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t exp[PKT_MAX];
	struct gc_route *r = calloc(1, sizeof(*r));
	struct sub_def defs[4];
	struct pkt_spec spec, echo;
	struct tc_run res;
	size_t elen;
	int i, ret;

	if (!r)
		return failf("out of memory");
	for (i = 0; i < 4; i++)
		sub_def_v4(&defs[i], i < 3 ? i : 0, i);
	defs[0].vlan = VLAN_A;
	defs[2].vlan = VLAN_B;
	defs[3].vlan = VLAN_B;
	route_fill(r, 4, V4_ORIGIN_A, ORIGIN_PORT, defs, 4, 0);
	r->origin_vlan = VLAN_A;
	ret = route_write(skel_echo, SSRC_V10, r);
	free(r);
	CHECK(ret == 0, "installing the route: %s", strerror(errno));
	if (tc_vlan_run(VLAN_A, V4_SFU_A, 120, &spec, before, &res))
		return -1;
	CHECK(res.retval == TC_ACT_REDIRECT, "verdict %u, want TC_ACT_REDIRECT", res.retval);
	/* The echo's tag (VLAN 10 again) is out of band, which a test run does
	 * not return: its bytes come back untagged (e2e: the tag on the wire). */
	echo = spec;
	echo.vlan_tci = 0;
	elen = expect_echo(&echo, exp);
	if (frame_eq(res.out, res.out_len, exp, elen, "echo"))
		return -1;
	if (check_all_copies(&spec, defs, 4))
		return -1;
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stats_expect(before, after, GC_STAT_FORWARDED, 4, GC_STAT_ECHOED, 1, -1);
}

/* The origin check without XDP in front: the VLAN-10 origin's address and
 * port tagged 20 is spoofed for TC too, and a VLAN without a device is
 * dropped; nothing is sent. */
static int tc_vlan_refused(uint16_t vlan, const uint8_t *daddr, int stat)
{
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	struct pkt_spec spec;
	struct frame got[4];
	struct tc_run res;

	if (tc_vlan_run(vlan, daddr, 80, &spec, before, &res))
		return -1;
	CHECK(res.retval == TC_ACT_SHOT, "verdict %u, want TC_ACT_SHOT", res.retval);
	CHECK(capture(cap_fd[0], got, 4, 0) == 0, "a copy was sent");
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stats_expect(before, after, stat, 1, -1);
}

static int t_tc_vlan_spoof(void)
{
	return tc_vlan_refused(VLAN_B, V4_SFU_B, GC_STAT_DROP(GC_DROP_SPOOFED));
}

static int t_tc_vlan_unknown(void)
{
	return tc_vlan_refused(VLAN_NONE, V4_SFU_A, GC_STAT_DROP(GC_DROP_VLAN));
}

static int t_tc_zero_csum(void) { return tc_forward(4, 0, 1, 1); }
static int t_tc_no_echo(void) { return tc_forward(4, 0, 0, 0); }

/*
 * A copy whose UDP checksum comes out as 0x0000 must carry 0xffff: IPv6
 * receivers drop a zero UDP checksum (RFC 8200 8.1; the helpers need
 * BPF_F_MARK_MANGLED_0). The last payload word is chosen so that the copy's
 * one's complement sum is 0xffff, i.e. its checksum computes to 0.
 */
static int t_tc_v6_csum_mangled0(void)
{
	uint8_t in[PKT_MAX], exp[PKT_MAX];
	struct pkt_layout lay;
	struct pkt_spec spec, copy;
	struct sub_def defs[1];
	struct tc_run r;
	size_t len, clen;

	sub_def_v6(&defs[0], 0, 0);
	/* The origin's port: only the address changes, the last rewrite is the
	 * IPv6 address update's (a port update has its own MARK_MANGLED_0). */
	defs[0].port = ORIGIN_PORT;
	CHECK(route_put(skel_noecho, SSRC_V6, 6, V6_ORIGIN, ORIGIN_PORT, defs, 1, 0) == 0,
	      "installing the route");
	spec_media(&spec, 6, SSRC_V6, 0, 100);
	payload_buf[spec.payload_len - 2] = payload_buf[spec.payload_len - 1] = 0;
	copy = spec;
	memcpy(copy.dmac, defs[0].mac, 6);
	memcpy(copy.smac, mac_sub_dev[0], 6);
	memcpy(copy.saddr, spec.daddr, 16);
	memcpy(copy.daddr, defs[0].addr, 16);
	copy.sport = spec.dport;
	copy.dport = defs[0].port;
	clen = pkt_build(&copy, exp, &lay);
	/* The checksum with the word at 0 is ~S; adding ~S to S gives 0xffff. */
	memcpy(payload_buf + spec.payload_len - 2, exp + lay.l4 + 6, 2);
	clen = pkt_build(&copy, exp, &lay);
	CHECK(exp[lay.l4 + 6] == 0xff && exp[lay.l4 + 7] == 0xff && clen > 0,
	      "test setup: the copy's checksum is %02x%02x, not the mangled zero",
	      exp[lay.l4 + 6], exp[lay.l4 + 7]);
	len = pkt_build(&spec, in, NULL);
	if (tc_run(skel_noecho, in, len, &r))
		return -1;
	CHECK(r.retval == TC_ACT_SHOT, "verdict %u, want TC_ACT_SHOT (echo off)", r.retval);
	return check_all_copies(&spec, defs, 1);
}

static int fanout(int family)
{
	static struct sub_def defs[FANOUT_MAX_SUBS];
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t in[PKT_MAX], exp[PKT_MAX];
	uint32_t ssrc = SSRC_V4 + 0x100 + family;
	struct pkt_spec spec;
	struct tc_run r;
	size_t len;
	int i;

	for (i = 0; i < FANOUT_MAX_SUBS; i++) {
		if (family == 4)
			sub_def_v4(&defs[i], i % N_SUB_DEVS, i);
		else
			sub_def_v6(&defs[i], i % N_SUB_DEVS, i);
	}
	spec_media(&spec, family, ssrc, 0, 320);
	len = pkt_build(&spec, in, NULL);
	if (tc_route_run(skel_echo, ssrc, family, defs, FANOUT_MAX_SUBS, in, len, before, &r))
		return -1;
	CHECK(r.retval == TC_ACT_REDIRECT, "verdict %u, want TC_ACT_REDIRECT", r.retval);
	if (frame_eq(r.out, r.out_len, exp, expect_echo(&spec, exp), "echo"))
		return -1;
	if (check_all_copies(&spec, defs, FANOUT_MAX_SUBS))
		return -1;
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stats_expect(before, after, GC_STAT_FORWARDED, FANOUT_MAX_SUBS, GC_STAT_ECHOED, 1, -1);
}

static int t_tc_fanout_v4(void) { return fanout(4); }
static int t_tc_fanout_v6(void) { return fanout(6); }

static int t_tc_missing_egress(void)
{
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t in[PKT_MAX];
	struct sub_def defs[3];
	struct pkt_spec spec;
	struct tc_run r;
	size_t len;

	sub_def_v4(&defs[0], 0, 0);
	sub_def_v4(&defs[1], -1, 1);	/* an ifindex that does not exist */
	sub_def_v4(&defs[2], 1, 2);
	spec_media(&spec, 4, SSRC_V4, 0, 80);
	len = pkt_build(&spec, in, NULL);
	if (tc_route_run(skel_echo, SSRC_V4, 4, defs, 3, in, len, before, &r))
		return -1;
	CHECK(r.retval == TC_ACT_REDIRECT, "verdict %u, want TC_ACT_REDIRECT", r.retval);
	if (check_copies(&spec, defs, 3, 0) || check_copies(&spec, defs, 3, 1))
		return -1;
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stats_expect(before, after, GC_STAT_FORWARDED, 2, GC_STAT_ECHOED, 1,
			    GC_STAT_DROP(GC_DROP_SEND_FAILED), 1, -1);
}

static int t_tc_family_mismatch(void)
{
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t in[PKT_MAX];
	struct sub_def defs[2];
	struct pkt_spec spec;
	struct tc_run r;
	size_t len;

	sub_def_v6(&defs[0], 0, 0);	/* IPv6 subscriber on an IPv4 route */
	sub_def_v4(&defs[1], 1, 1);
	spec_media(&spec, 4, SSRC_V4, 0, 80);
	len = pkt_build(&spec, in, NULL);
	if (tc_route_run(skel_echo, SSRC_V4, 4, defs, 2, in, len, before, &r))
		return -1;
	/* Nothing on gr0 (the IPv6 subscriber's device), the copy on gr1. */
	if (check_copies(&spec, defs + 1, 1, 0) || check_copies(&spec, defs + 1, 1, 1))
		return -1;
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stats_expect(before, after, GC_STAT_FORWARDED, 1, GC_STAT_ECHOED, 1,
			    GC_STAT_DROP(GC_DROP_FAMILY), 1, -1);
}

/* The route's media counters (gc_media, keyed by SSRC; the loader creates the
 * entry with the route): one datagram in, two copies out, one lost (no such
 * egress device), the echo; bytes are UDP payload bytes. Without an entry the
 * route is replicated all the same, uncounted. */
static int t_tc_media_counters(void)
{
	int fd = bpf_map__fd(skel_echo->maps.gc_media), ncpus = libbpf_num_possible_cpus(), c;
	uint64_t before[GC_STAT_MAX];
	struct gc_media_counters *vals, sum = {};
	uint8_t in[PKT_MAX];
	struct sub_def defs[3];
	struct pkt_spec spec;
	struct tc_run r;
	uint64_t bytes;
	size_t len;

	CHECK(ncpus > 0, "counting possible CPUs");
	vals = calloc(ncpus, sizeof(*vals));
	CHECK(vals, "allocating per-CPU values");
	sub_def_v4(&defs[0], 0, 0);
	sub_def_v4(&defs[1], -1, 1);	/* an ifindex that does not exist */
	sub_def_v4(&defs[2], 1, 2);
	spec_media(&spec, 4, SSRC_V4, 0, 80);
	len = pkt_build(&spec, in, NULL);
	bytes = len - udp_payload_off(in, len);
	bpf_map_delete_elem(fd, &(uint32_t){ SSRC_V4 });
	if (tc_route_run(skel_echo, SSRC_V4, 4, defs, 3, in, len, before, &r) ||
	    bpf_map_update_elem(fd, &(uint32_t){ SSRC_V4 }, vals, BPF_NOEXIST) ||
	    tc_run(skel_echo, in, len, &r) || tc_run(skel_echo, in, len, &r) ||
	    bpf_map_lookup_elem(fd, &(uint32_t){ SSRC_V4 }, vals)) {
		free(vals);
		return failf("running the route with its counters: %s", strerror(errno));
	}
	bpf_map_delete_elem(fd, &(uint32_t){ SSRC_V4 });
	for (c = 0; c < ncpus; c++)
		gc_media_counters_add(&sum, &vals[c]);
	free(vals);
	/* Two runs counted (the first, before the entry existed, not). */
	CHECK(sum.received == 2 && sum.received_bytes == 2 * bytes, "received %llu (%llu bytes), want 2 (%llu)",
	      (unsigned long long)sum.received, (unsigned long long)sum.received_bytes,
	      (unsigned long long)(2 * bytes));
	CHECK(sum.forwarded == 4 && sum.forwarded_bytes == 4 * bytes, "forwarded %llu (%llu bytes), want 4 (%llu)",
	      (unsigned long long)sum.forwarded, (unsigned long long)sum.forwarded_bytes,
	      (unsigned long long)(4 * bytes));
	CHECK(sum.echoed == 2 && sum.echoed_bytes == 2 * bytes, "echoed %llu (%llu bytes), want 2",
	      (unsigned long long)sum.echoed, (unsigned long long)sum.echoed_bytes);
	CHECK(sum.dropped == 2, "dropped %llu, want 2 (one lost copy per run)", (unsigned long long)sum.dropped);
	return 0;
}

/* Without XDP in front, TC must still refuse what XDP would have dropped,
 * and leave alone what goes to user space. */
static int tc_alone(enum mut m, uint32_t ssrc, int verdict, int stat)
{
	const struct xdp_case c = { "", 4, 0, ssrc, m, 0, 0, 0, 0, "", "" };
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	struct sub_def defs[1];
	uint8_t in[PKT_MAX];
	struct frame got[4];
	struct pkt_spec spec;
	struct tc_run r;
	size_t len;

	sub_def_v4(&defs[0], 0, 0);
	len = xdp_case_frame(&c, in, &spec);
	if (tc_route_run(skel_echo, SSRC_V4, 4, defs, 1, in, len, before, &r))
		return -1;
	CHECK((int)r.retval == verdict, "verdict %u, want %d", r.retval, verdict);
	CHECK(r.out_len == len && !memcmp(r.out, in, len), "the frame was modified");
	CHECK(capture(cap_fd[0], got, 4, 0) == 0, "a copy was sent");
	CHECK(stats_read(skel_echo, after) == 0, "reading counters");
	return stat >= 0 ? stats_expect(before, after, stat, 1, -1) : stats_expect(before, after, -1);
}

static int t_tc_spoof(void) { return tc_alone(M_WRONG_ADDR, SSRC_V4, TC_ACT_SHOT, GC_STAT_DROP(GC_DROP_SPOOFED)); }
static int t_tc_malformed(void) { return tc_alone(M_UDPLEN_LONG, SSRC_V4, TC_ACT_SHOT, GC_STAT_DROP(GC_DROP_UDP_LENGTH)); }
static int t_tc_bad_rtp(void) { return tc_alone(M_BAD_RTP_VER, SSRC_V4, TC_ACT_SHOT, GC_STAT_DROP(GC_DROP_BAD_RTP_VERSION)); }
static int t_tc_unknown(void) { return tc_alone(M_NONE, SSRC_UNKNOWN, TC_ACT_OK, -1); }
static int t_tc_other_port(void) { return tc_alone(M_OTHER_PORT, SSRC_V4, TC_ACT_OK, -1); }
static int t_tc_bad_csum(void) { return tc_alone(M_UDP_CSUM_BAD, SSRC_V4, TC_ACT_OK, -1); }

/*
 * ---- The XDP -> TC vouch (struct gc_xdp_meta) ----------------------------
 *
 * The TC program does not sum the UDP checksum of (or look the local
 * addresses up for) a frame its own XDP program vouched for, and nothing
 * else. These run frames the way the stack does after an XDP_PASS: a live
 * XDP test run (BPF_F_TEST_XDP_LIVE_FRAMES) on gin0 hands each frame that
 * passes, with its metadata, to gin0's receive path, where skel_echo's TC
 * program is attached at ingress; a copy reaching gr0 means TC replicated.
 * The XDP program is either skel_echo's own or a forger: raw instructions
 * that put any 32 bytes in front of the frame and pass it.
 */
#define INSN(c, d, s_, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s_), \
						   .off = (o), .imm = (i) })

static int forger_load(const struct gc_xdp_meta *m)
{
	struct bpf_insn p[32];
	uint64_t w[4];
	int n = 0, k, fd;

	memcpy(w, m, sizeof(w));
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, -(int)sizeof(w));
	p[n++] = INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_xdp_adjust_meta);
	p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 17, 0);		/* -> pass */
	p[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6,
		      offsetof(struct xdp_md, data_meta), 0);
	p[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data), 0);
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
	p[n++] = INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, sizeof(w));
	p[n++] = INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 12, 0);	/* -> pass */
	for (k = 0; k < 4; k++) {
		p[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_5, 0, 0, (uint32_t)w[k]);
		p[n++] = INSN(0, 0, 0, 0, (uint32_t)(w[k] >> 32));
		p[n++] = INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_5, 8 * k, 0);
	}
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS);	/* pass: */
	p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	{
		static char log[8192];
		LIBBPF_OPTS(bpf_prog_load_opts, lo, .log_buf = log, .log_size = sizeof(log),
			    .log_level = 1);

		log[0] = 0;
		fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "gc_forger", "Dual BSD/GPL", p, n, &lo);
		if (fd < 0)
			failf("loading the forger: %s; %s", strerror(errno), log);
	}
	return fd;
}

/* @f through XDP program @prog_fd as if received on gin0, then the stack. */
static int live_run(int prog_fd, const uint8_t *f, size_t len)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifi_in };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return failf("live BPF_PROG_TEST_RUN: %s", strerror(errno));
	return 0;
}

enum forge { F_OWN_XDP, F_EXACT, F_NONE, F_OTHER_KEY, F_OTHER_IF, F_OTHER_CHECK, F_OTHER_LEN,
	     F_OTHER_SSRC };

/* @m's frame (SSRC_V4 to one subscriber on gs0) through skel_echo's XDP
 * program (F_OWN_XDP) or a forger vouching as @how says; @copies: how many
 * must reach gr0. */
static int vouch_case(enum mut m, enum forge how, int copies)
{
	const struct xdp_case c = { "", 4, 0, SSRC_V4, m, 0, 0, 0, 0, "", "" };
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifi_in, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = 1, .priority = 1);
	struct gc_xdp_meta v = { .magic = GC_XDP_META_MAGIC };
	struct sub_def defs[1];
	uint8_t in[PKT_MAX];
	struct frame got[4];
	struct pkt_spec spec;
	size_t len;
	int fd, u, ret = 0, n;

	sub_def_v4(&defs[0], 0, 0);
	len = xdp_case_frame(&c, in, &spec);
	CHECK(route_put(skel_echo, SSRC_V4, 4, V4_ORIGIN, ORIGIN_PORT, defs, 1, 0) == 0,
	      "installing the route: %s", strerror(errno));
	u = udp_payload_off(in, len) - 8;
	CHECK(u > 0, "no UDP header");
	if (how == F_OWN_XDP) {
		fd = bpf_program__fd(skel_echo->progs.groupcast_xdp);
	} else {
		/* Exactly what skel_echo's XDP program writes for this frame,
		 * but for the one field @how changes. */
		v.ifindex = ifi_in;
		v.rx_ns = 1;
		v.key = skel_echo->bss->gc_meta_key;
		v.ssrc = SSRC_V4;
		v.udp_len = in[u + 4] << 8 | in[u + 5];
		memcpy(&v.udp_check, in + u + 6, 2);
		CHECK(v.key, "skel_echo's XDP program has not made its key");
		if (how == F_NONE)
			v.magic = 0;
		if (how == F_OTHER_KEY)
			v.key ^= 1ull << 40;
		if (how == F_OTHER_IF)
			v.ifindex = ifi_sub[0];
		if (how == F_OTHER_CHECK)
			v.udp_check ^= 0x0100;
		if (how == F_OTHER_LEN)
			v.udp_len++;
		if (how == F_OTHER_SSRC)
			v.ssrc++;
		fd = forger_load(&v);
		if (fd < 0)
			return -1;
	}
	if (bpf_tc_hook_create(&hook) && errno != EEXIST) {
		ret = failf("clsact on gin0: %s", strerror(errno));
		goto out;
	}
	if (bpf_tc_attach(&hook, (tco.prog_fd = bpf_program__fd(skel_echo->progs.groupcast_tc), &tco))) {
		ret = failf("attaching TC to gin0: %s", strerror(errno));
		goto out_hook;
	}
	drain(cap_fd[0]);
	if (live_run(fd, in, len)) {
		ret = -1;
		goto out_hook;
	}
	if (copies && m == M_NONE) {
		/* Byte for byte the copy of the TC cases. */
		ret = check_copies(&spec, defs, 1, 0) ? -1 : 0;
	} else {
		n = capture(cap_fd[0], got, 4, copies);
		if (n != copies)
			ret = failf("gr0 captured %d frames, want %d", n, copies);
	}
out_hook:
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	bpf_tc_hook_destroy(&hook);
out:
	if (how != F_OWN_XDP)
		close(fd);
	return ret;
}

static int t_vouch_own(void) { return vouch_case(M_NONE, F_OWN_XDP, 1); }
static int t_vouch_own_bad_csum(void) { return vouch_case(M_UDP_CSUM_BAD, F_OWN_XDP, 0); }
static int t_vouch_forged_exact(void) { return vouch_case(M_UDP_CSUM_BAD, F_EXACT, 1); }
static int t_vouch_none(void) { return vouch_case(M_UDP_CSUM_BAD, F_NONE, 0); }
static int t_vouch_other_key(void) { return vouch_case(M_UDP_CSUM_BAD, F_OTHER_KEY, 0); }
static int t_vouch_other_if(void) { return vouch_case(M_UDP_CSUM_BAD, F_OTHER_IF, 0); }
static int t_vouch_other_check(void) { return vouch_case(M_UDP_CSUM_BAD, F_OTHER_CHECK, 0); }
static int t_vouch_other_len(void) { return vouch_case(M_UDP_CSUM_BAD, F_OTHER_LEN, 0); }
static int t_vouch_other_ssrc(void) { return vouch_case(M_UDP_CSUM_BAD, F_OTHER_SSRC, 0); }
static int t_vouch_forged_not_local(void) { return vouch_case(M_DST_OTHER, F_EXACT, 1); }
static int t_vouch_other_key_not_local(void) { return vouch_case(M_DST_OTHER, F_OTHER_KEY, 0); }

/* Metadata a frame arrives with at the XDP program never leaves it as a
 * vouch: not for a frame it passes unvouched (@m: a wrong checksum), not
 * for media it would vouch for itself (no room for its own then). */
static int xdp_meta_in(enum mut m, int media)
{
	const struct xdp_case c = { "", 4, 0, SSRC_V4, m, 0, 0, 0, 0, "", "" };
	struct gc_xdp_meta v = { .magic = GC_XDP_META_MAGIC, .ifindex = 1, .rx_ns = 1 };
	uint8_t in[PKT_MAX + sizeof(v)], out[PKT_MAX + sizeof(v)];
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	struct xdp_md ctx = { .data = sizeof(v) };
	struct pkt_spec spec;
	uint32_t magic;
	size_t len;
	int u;

	len = xdp_case_frame(&c, in + sizeof(v), &spec);
	u = udp_payload_off(in + sizeof(v), len) - 8 + sizeof(v);
	CHECK(u > (int)sizeof(v), "no UDP header");
	v.key = skel_echo->bss->gc_meta_key;
	v.ssrc = SSRC_V4;
	v.udp_len = in[u + 4] << 8 | in[u + 5];
	memcpy(&v.udp_check, in + u + 6, 2);
	memcpy(in, &v, sizeof(v));
	ctx.data_end = sizeof(v) + len;
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = sizeof(v) + len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .ctx_out = &ctx, .ctx_size_out = sizeof(ctx),
			    .repeat = 1);

		CHECK(stats_read(skel_echo, before) == 0, "reading counters");
		CHECK(bpf_prog_test_run_opts(bpf_program__fd(skel_echo->progs.groupcast_xdp), &o) == 0,
		      "BPF_PROG_TEST_RUN: %s", strerror(errno));
		CHECK(stats_read(skel_echo, after) == 0, "reading counters");
		CHECK(o.retval == XDP_PASS, "verdict %u, want XDP_PASS", o.retval);
		CHECK(ctx.data == sizeof(v), "%u bytes of metadata out, want the %zu that came in",
		      ctx.data, sizeof(v));
		memcpy(&magic, out, 4);
		CHECK(magic != GC_XDP_META_MAGIC, "the metadata that came in left as a vouch");
		CHECK(!memcmp(out + sizeof(v), in + sizeof(v), len), "XDP changed the frame");
	}
	return stats_expect(before, after, GC_STAT_RX, 1,
			    media ? GC_STAT_RX_MEDIA : GC_STAT_PASS_UDP_CSUM, 1, -1);
}

static int t_xdp_meta_in_bad_csum(void) { return xdp_meta_in(M_UDP_CSUM_BAD, 0); }
static int t_xdp_meta_in_media(void) { return xdp_meta_in(M_NONE, 1); }

/*
 * Route updates are never seen half-made: stream A's route flips between
 * two subscriber sets (gs0, gs1) and stream B's between two others (gs2,
 * gs3) on one CPU, as fast as the map takes them, while stream A's packets
 * run through the TC program on the other CPU. Not one copy may leave
 * through gs2/gs3 (B's devices), and every run must send exactly one full
 * subscriber set.
 */
#define CHURN_SSRC_A	0x2222000au
#define CHURN_SSRC_B	0x2222000bu
#define CHURN_MS	3000

struct churn {
	struct groupcast *skel;
	struct gc_route *routes[4];	/* A via gs0, B via gs2, A via gs1, B via gs3 */
	volatile int stop;
	unsigned long updates;
	int err;
};

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void *churn_routes(void *arg)
{
	struct churn *c = arg;
	static const uint32_t ssrc[4] = { CHURN_SSRC_A, CHURN_SSRC_B, CHURN_SSRC_A, CHURN_SSRC_B };
	unsigned long i;

	pin_cpu(0);
	for (i = 0; !c->stop; i++) {
		if (route_write(c->skel, ssrc[i % 4], c->routes[i % 4])) {
			c->err = errno;
			break;
		}
	}
	c->updates = i;
	return NULL;
}

/* Packets sent and dropped by device @name (veth counts a copy the peer's
 * backlog refused as a tx drop), from this netns's /proc/net/dev. */
static long long dev_tx(const char *name)
{
	char line[512], want[IFNAMSIZ + 2];
	long long v[16], r = -1;
	FILE *f = fopen("/proc/net/dev", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%s:", name);
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		while (*p == ' ')
			p++;
		if (strncmp(p, want, strlen(want)))
			continue;
		if (sscanf(p + strlen(want), "%lld %lld %lld %lld %lld %lld %lld %lld %lld %lld "
			   "%lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4],
			   &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
			   &v[14], &v[15]) == 16)
			r = v[9] + v[11];	/* tx packets + tx drop */
	}
	fclose(f);
	return r;
}

static int t_tc_route_churn(void)
{
	static struct sub_def defs[GC_MAX_SUBSCRIBERS];
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	long long tx0[N_SUB_DEVS], tx1[N_SUB_DEVS];
	struct churn c = { .skel = skel_noecho };
	uint8_t in[PKT_MAX], out[PKT_MAX];
	unsigned long runs = 0, bad_verdict = 0;
	struct pkt_spec spec;
	struct timespec t0, t;
	pthread_t th;
	size_t len;
	int i, d, ret = 0;

	for (i = 0; i < 4; i++) {
		c.routes[i] = calloc(1, sizeof(struct gc_route));
		if (!c.routes[i])
			return failf("calloc");
		/* 0: A on gs0, 1: B on gs2, 2: A on gs1, 3: B on gs3 */
		d = i == 0 ? 0 : i == 1 ? 2 : i == 2 ? 1 : 3;
		for (int k = 0; k < GC_MAX_SUBSCRIBERS; k++)
			sub_def_v4(&defs[k], d, k);
		route_fill(c.routes[i], 4, V4_ORIGIN, ORIGIN_PORT, defs, GC_MAX_SUBSCRIBERS, 0);
	}
	if (route_write(c.skel, CHURN_SSRC_A, c.routes[0]) ||
	    route_write(c.skel, CHURN_SSRC_B, c.routes[1])) {
		ret = failf("installing the routes: %s", strerror(errno));
		goto out;
	}
	spec_media(&spec, 4, CHURN_SSRC_A, 0, 40);
	len = pkt_build(&spec, in, NULL);
	for (i = 0; i < N_SUB_DEVS; i++)
		tx0[i] = dev_tx((char[]){ 'g', 's', '0' + i, 0 });
	if (stats_read(c.skel, before)) {
		ret = failf("reading counters");
		goto out;
	}
	if (pthread_create(&th, NULL, churn_routes, &c)) {
		ret = failf("pthread_create");
		goto out;
	}
	pin_cpu(1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
		struct __sk_buff ctx = { .ifindex = ifi_in };

		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
		if (bpf_prog_test_run_opts(bpf_program__fd(c.skel->progs.groupcast_tc), &o) ||
		    o.retval != TC_ACT_SHOT)
			bad_verdict++;
		runs++;
		if (runs % 64 == 0)
			for (i = 0; i < N_SUB_DEVS; i++)
				drain(cap_fd[i]);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < CHURN_MS);
	c.stop = 1;
	pthread_join(th, NULL);
	{
		cpu_set_t all;

		CPU_ZERO(&all);
		for (i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &all);
		sched_setaffinity(0, sizeof(all), &all);
	}
	usleep(100000);
	for (i = 0; i < N_SUB_DEVS; i++) {
		tx1[i] = dev_tx((char[]){ 'g', 's', '0' + i, 0 });
		drain(cap_fd[i]);
	}
	if (stats_read(c.skel, after)) {
		ret = failf("reading counters");
		goto out;
	}
	printf("# route churn: %lu program runs, %lu route updates; copies via gs0..gs3: "
	       "%lld %lld %lld %lld\n", runs, c.updates, tx1[0] - tx0[0], tx1[1] - tx0[1],
	       tx1[2] - tx0[2], tx1[3] - tx0[3]);
	if (c.err)
		ret = failf("route update failed: %s", strerror(c.err));
	else if (bad_verdict)
		ret = failf("%lu of %lu runs failed or did not return TC_ACT_SHOT", bad_verdict, runs);
	else if (c.updates < 20)
		ret = failf("only %lu route updates: no churn to speak of", c.updates);
	else if (tx1[2] != tx0[2] || tx1[3] != tx0[3])
		ret = failf("stream A leaked to stream B's subscribers: %lld copies via gs2/gs3 "
			    "in %lu runs, %lu updates", tx1[2] - tx0[2] + tx1[3] - tx0[3], runs,
			    c.updates);
	/* Every run tried exactly one whole set: sent, or refused by a full
	 * veth backlog (counted as drop_redirect; happens under emulation). */
	else if (after[GC_STAT_FORWARDED] - before[GC_STAT_FORWARDED] +
		 after[GC_STAT_DROP(GC_DROP_SEND_FAILED)] - before[GC_STAT_DROP(GC_DROP_SEND_FAILED)] !=
		 (uint64_t)runs * GC_MAX_SUBSCRIBERS)
		ret = failf("%llu copies sent and %llu refused in %lu runs: a run saw a partial "
			    "subscriber set",
			    (unsigned long long)(after[GC_STAT_FORWARDED] - before[GC_STAT_FORWARDED]),
			    (unsigned long long)(after[GC_STAT_DROP(GC_DROP_SEND_FAILED)] -
						 before[GC_STAT_DROP(GC_DROP_SEND_FAILED)]), runs);
out:
	bpf_map_delete_elem(bpf_map__fd(c.skel->maps.gc_routes), &(uint32_t){ CHURN_SSRC_A });
	bpf_map_delete_elem(bpf_map__fd(c.skel->maps.gc_routes), &(uint32_t){ CHURN_SSRC_B });
	for (i = 0; i < 4; i++)
		free(c.routes[i]);
	return ret;
}

/* ---- loader library ------------------------------------------------------ */

static int t_loader_no_device(void)
{
	struct gcfp_attach_opts o = { .ifname = "gcnosuch0", .port = SFU_PORT, .echo = 1 };
	struct gcfp_error err;

	CHECK(gcfp_attach(&o, &err) == -GCFP_ERR_NO_DEVICE, "attach: %s", err.message);
	CHECK(err.code == GCFP_ERR_NO_DEVICE && strstr(err.message, "gcnosuch0"),
	      "error names the device: %s", err.message);
	return 0;
}

static int t_loader_lifecycle(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin1", .port = 7000, .echo = 0,
				      .max_routes = 64 };
	struct gc_subscriber subs[GC_MAX_SUBSCRIBERS + 1];
	struct bpf_xdp_query_opts q = { .sz = sizeof(q) };
	struct gcfp_status st;
	struct gcfp_handle *h;
	struct gcfp_error err;
	struct gc_route *r;
	uint64_t c[GC_STAT_MAX];
	uint32_t next;
	int i, ret;

	CHECK(gcfp_status("gin1", &st, &err) == -GCFP_ERR_NOT_ATTACHED, "status before attach");
	CHECK(gcfp_attach(&o, &err) == 0, "attach: %s", err.message);
	CHECK(gcfp_attach(&o, &err) == -GCFP_ERR_ALREADY_ATTACHED, "second attach: %s",
	      err.message);
	CHECK(gcfp_status("gin1", &st, &err) == 0, "status: %s", err.message);
	CHECK(st.attached && st.xdp_prog_id && st.tc_prog_id && st.xdp_mode == GCFP_XDP_NATIVE,
	      "status: attached %u xdp %u tc %u mode %u", st.attached, st.xdp_prog_id,
	      st.tc_prog_id, st.xdp_mode);
	CHECK(st.port == 7000 && !st.echo && st.max_routes == 64 && st.route_count == 0,
	      "status: port %u echo %u max_routes %u routes %u", st.port, st.echo, st.max_routes,
	      st.route_count);
	CHECK(st.ifindex == if_nametoindex("gin1"), "status ifindex");

	CHECK(gcfp_open("gin1", &h, &err) == 0, "open: %s", err.message);
	for (i = 0; i <= GC_MAX_SUBSCRIBERS; i++) {
		uint8_t a[4] = { 10, 9, i >> 8, i & 0xff }, mac[6] = { 2, 0, 0, 0, 0, 1 };

		CHECK(gcfp_subscriber_init(&subs[i], 4, a, 9000 + i, mac, ifi_sub[i % N_SUB_DEVS], 0,
					   &err) == 0, "subscriber_init: %s", err.message);
	}
	ret = gcfp_route_set(h, 1, 4, V4_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_VSQ, subs,
			     GC_MAX_SUBSCRIBERS, &err);
	CHECK(ret == 0, "route_set at the limit: %d %s", ret, err.message);
	r = malloc(sizeof(*r));
	CHECK(r, "malloc");
	ret = gcfp_route_get(h, 1, r, &err);
	if (ret == 0 && (r->n_subs != GC_MAX_SUBSCRIBERS || r->flags ||
			 memcmp(r->subs[5].src_mac, mac_sub_dev[5 % N_SUB_DEVS], 6) ||
			 r->subs[5].port != htons(9005) || r->stream_type != GC_STREAM_VSQ))
		ret = failf("route as read back: n %u flags %u", r->n_subs, r->flags);
	if (ret == 0) {
		ret = gcfp_route_set(h, 2, 4, V4_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_VHQ, subs,
				     GC_MAX_SUBSCRIBERS + 1, &err);
		if (ret != 1)
			ret = failf("route_set over the limit returned %d (%s), want 1", ret,
				    err.message);
		else if (gcfp_route_get(h, 2, r, &err) || !(r->flags & GC_ROUTE_F_USERSPACE) ||
			 r->n_subs)
			ret = failf("over-limit route not marked for user space");
		else
			ret = 0;
	}
	free(r);
	if (ret)
		return ret;
	CHECK(gcfp_route_set(h, 3, 6, V6_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_ASQ, subs, 1, &err) ==
	      -GCFP_ERR_INVALID, "ipv4 subscriber on an ipv6 route accepted");
	CHECK(gcfp_route_set(h, 3, 4, V4_ORIGIN, ORIGIN_PORT, 0, 9, subs, 1, &err) ==
	      -GCFP_ERR_INVALID, "stream type 9 accepted");
	CHECK(gcfp_route_remove(h, 77, &err) == -GCFP_ERR_NO_ROUTE, "removing a missing route: %s",
	      err.message);
	CHECK(gcfp_route_next(h, NULL, &next, &err) == 0, "route_next");
	CHECK(gcfp_route_remove(h, 2, &err) == 0, "route_remove: %s", err.message);
	CHECK(gcfp_stats(h, c, &err) == 0, "stats: %s", err.message);
	gcfp_close(h);
	CHECK(gcfp_status("gin1", &st, &err) == 0 && st.route_count == 1, "route count %u",
	      st.route_count);

	CHECK(gcfp_detach("gin1", &err) == 0, "detach: %s", err.message);
	CHECK(bpf_xdp_query(if_nametoindex("gin1"), 0, &q) == 0 && q.prog_id == 0,
	      "XDP program still attached after detach");
	CHECK(gcfp_status("gin1", &st, &err) == -GCFP_ERR_NOT_ATTACHED, "status after detach");
	CHECK(gcfp_detach("gin1", &err) == -GCFP_ERR_NOT_ATTACHED, "second detach");
	/* Attach again with generic XDP. */
	o.xdp_mode = GCFP_XDP_GENERIC;
	CHECK(gcfp_attach(&o, &err) == 0, "generic attach: %s", err.message);
	CHECK(gcfp_status("gin1", &st, &err) == 0 && st.attached &&
	      st.xdp_mode == GCFP_XDP_GENERIC, "generic mode status");
	CHECK(gcfp_detach("gin1", &err) == 0, "detach: %s", err.message);
	return 0;
}

/* GC_INGRESS_TC: only the TC program attached (and pinned), the status says so. */
static int t_loader_tc_ingress(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin1", .port = 7000, .echo = 1,
				      .ingress = GC_INGRESS_TC };
	struct bpf_xdp_query_opts q = { .sz = sizeof(q) };
	struct gcfp_status st;
	struct gcfp_error err;
	char path[PATH_MAX];

	o.ingress = 2;
	CHECK(gcfp_attach(&o, &err) == -GCFP_ERR_INVALID, "ingress 2 accepted: %s", err.message);
	o.ingress = GC_INGRESS_TC;
	CHECK(gcfp_attach(&o, &err) == 0, "attach: %s", err.message);
	CHECK(gcfp_status("gin1", &st, &err) == 0, "status: %s", err.message);
	CHECK(st.attached && !st.xdp_prog_id && st.tc_prog_id && st.ingress == GC_INGRESS_TC,
	      "status: attached %u xdp %u tc %u ingress %u", st.attached, st.xdp_prog_id,
	      st.tc_prog_id, st.ingress);
	CHECK(bpf_xdp_query(if_nametoindex("gin1"), 0, &q) == 0 && q.prog_id == 0,
	      "XDP program %u attached with tc ingress", q.prog_id);
	snprintf(path, sizeof(path), "%s/%s", st.pin_dir, GC_PIN_PROG_XDP);
	CHECK(access(path, F_OK) != 0, "%s pinned with tc ingress", path);
	CHECK(gcfp_attach(&o, &err) == -GCFP_ERR_ALREADY_ATTACHED, "second attach: %s", err.message);
	CHECK(gcfp_detach("gin1", &err) == 0, "detach: %s", err.message);
	CHECK(gcfp_status("gin1", &st, &err) == -GCFP_ERR_NOT_ATTACHED, "status after detach");
	/* And back: the default ingress attaches both, the status says xdp. */
	o.ingress = GC_INGRESS_XDP;
	CHECK(gcfp_attach(&o, &err) == 0, "attach: %s", err.message);
	CHECK(gcfp_status("gin1", &st, &err) == 0 && st.attached && st.xdp_prog_id &&
	      st.ingress == GC_INGRESS_XDP, "xdp ingress status");
	CHECK(gcfp_detach("gin1", &err) == 0, "detach: %s", err.message);
	return 0;
}

/* The local-address map follows the interface: an address added after
 * attach is not served until gcfp_local_refresh(), then it is; a removed
 * one no longer is. */
static int t_loader_local_refresh(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin1", .port = 7000, .echo = 1 };
	struct gc_local_addr k4 = { .family = GC_FAMILY_IPV4, .addr = { 10, 77, 0, 1 } };
	struct gc_local_addr k6 = { .family = GC_FAMILY_IPV6,
				    .addr = { 0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } };
	char dir[256], path[PATH_MAX];
	struct gcfp_handle *h = NULL;
	struct gcfp_error err;
	int fd = -1, ret = 0, n0, n1, n2;
	__u8 v;

	sh("ip addr del 10.77.0.1/32 dev gin1 2>/dev/null; ip -6 addr del fd77::1/128 dev gin1 2>/dev/null");
	if (write_file("/proc/sys/net/ipv6/conf/gin1/disable_ipv6", "0"))
		return failf("enabling IPv6 on gin1");
	if (gcfp_attach(&o, &err))
		return failf("attach: %s", err.message);
	if (gcfp_open("gin1", &h, &err) || gcfp_pin_dir("gin1", dir, sizeof(dir), &err)) {
		ret = failf("open: %s", err.message);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, GC_PIN_LOCAL);
	fd = bpf_obj_get(path);
	n0 = gcfp_local_refresh(h, &err);
	if (fd < 0 || n0 < 0) {
		ret = failf("local map %s: %s", path, n0 < 0 ? err.message : strerror(errno));
		goto out;
	}
	if (sh("ip addr add 10.77.0.1/32 dev gin1") || sh("ip -6 addr add fd77::1/128 dev gin1 nodad")) {
		ret = failf("adding addresses");
		goto out;
	}
	if (!bpf_map_lookup_elem(fd, &k4, &v)) {
		ret = failf("an address added after attach is in the map before any refresh");
		goto out;
	}
	n1 = gcfp_local_refresh(h, &err);
	if (n1 != n0 + 2 || bpf_map_lookup_elem(fd, &k4, &v) || bpf_map_lookup_elem(fd, &k6, &v)) {
		ret = failf("after adding two addresses: %d addresses (want %d), %s", n1, n0 + 2,
			    n1 < 0 ? err.message : "not both in the map");
		goto out;
	}
	sh("ip addr del 10.77.0.1/32 dev gin1; ip -6 addr del fd77::1/128 dev gin1");
	n2 = gcfp_local_refresh(h, &err);
	if (n2 != n0 || !bpf_map_lookup_elem(fd, &k4, &v) || !bpf_map_lookup_elem(fd, &k6, &v))
		ret = failf("after removing them: %d addresses (want %d), %s", n2, n0,
			    n2 < 0 ? err.message : "still in the map");
out:
	if (fd >= 0)
		close(fd);
	gcfp_close(h);
	gcfp_detach("gin1", &err);
	sh("ip addr del 10.77.0.1/32 dev gin1 2>/dev/null; ip -6 addr del fd77::1/128 dev gin1 2>/dev/null");
	write_file("/proc/sys/net/ipv6/conf/gin1/disable_ipv6", "1");
	return ret;
}

/* XDP verdict of the attached program (pinned under @dir) for IPv4 media of
 * SSRC_V4 from V4_ORIGIN to @daddr, and the counter it moved (besides rx). */
static int pinned_xdp_verdict(const char *dir, const uint8_t *daddr, const uint8_t *dmac,
			      struct gcfp_handle *h, int *stat)
{
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t in[PKT_MAX], out[PKT_MAX + 64];
	char path[PATH_MAX];
	struct pkt_spec spec;
	struct gcfp_error err;
	size_t len;
	int fd, ret, k;

	spec_media(&spec, 4, SSRC_V4, 0, 40);
	memcpy(spec.dmac, dmac, 6);
	memcpy(spec.daddr, daddr, 4);
	len = pkt_build(&spec, in, NULL);
	snprintf(path, sizeof(path), "%s/%s", dir, GC_PIN_PROG_XDP);
	fd = bpf_obj_get(path);
	if (fd < 0 || gcfp_stats(h, before, &err))
		return -1;
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);

		ret = bpf_prog_test_run_opts(fd, &o) ? -1 : (int)o.retval;
	}
	close(fd);
	if (gcfp_stats(h, after, &err))
		return -1;
	*stat = -1;
	for (k = 0; k < GC_STAT_MAX; k++)
		if (k != GC_STAT_RX && after[k] != before[k])
			*stat = k;
	return ret;
}

/* Issue 13: an SFU bound to one address replicates only media sent to it
 * (copies take their source from the destination): attached with that
 * listen address, media to the interface's other address is passed to the
 * stack (which would not deliver it to that socket), also after a refresh.
 * Without a listen address both are served (the wildcard socket's case). */
static int t_loader_listen(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin1", .port = SFU_PORT, .echo = 1,
				      .listen = { .family = GC_FAMILY_IPV4, .addr = { 10, 78, 0, 1 } } };
	static const uint8_t bound[4] = { 10, 78, 0, 1 }, other[4] = { 10, 78, 0, 2 };
	struct gcfp_handle *h = NULL;
	struct gcfp_error err;
	struct gc_subscriber sub;
	uint8_t mac[6], sub_ip[4] = { 10, 78, 1, 1 };
	char dir[256];
	int ret = 0, stat, v, pass;

	if (if_mac("gin1", mac) || sh("ip addr add 10.78.0.1/24 dev gin1") ||
	    sh("ip addr add 10.78.0.2/24 dev gin1"))
		return failf("configuring gin1");
	for (pass = 0; pass < 2 && !ret; pass++) {
		if (pass == 1)
			memset(&o.listen, 0, sizeof(o.listen));	/* a wildcard socket */
		if (gcfp_attach(&o, &err)) {
			ret = failf("attach: %s", err.message);
			break;
		}
		if (gcfp_open("gin1", &h, &err) || gcfp_pin_dir("gin1", dir, sizeof(dir), &err) ||
		    gcfp_subscriber_init(&sub, 4, sub_ip, 6000, mac, ifi_sub[0], 0, &err) ||
		    gcfp_route_set(h, SSRC_V4, 4, V4_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_ASQ, &sub, 1,
				   &err) ||
		    gcfp_local_refresh(h, &err) < 0) {
			ret = failf("open, route, refresh: %s", err.message);
		} else if ((v = pinned_xdp_verdict(dir, bound, mac, h, &stat)) != XDP_PASS ||
			   stat != GC_STAT_RX_MEDIA) {
			ret = failf("%s: media to the bound address: verdict %d, counter %s",
				    pass ? "wildcard" : "listen", v, stat >= 0 ? gcfp_stat_name(stat) : "-");
		} else if ((v = pinned_xdp_verdict(dir, other, mac, h, &stat)) != XDP_PASS ||
			   stat != (pass ? GC_STAT_RX_MEDIA : GC_STAT_PASS_NOT_LOCAL)) {
			ret = failf("%s: media to the interface's other address: verdict %d, counter %s, "
				    "want %s", pass ? "wildcard" : "listen", v,
				    stat >= 0 ? gcfp_stat_name(stat) : "-",
				    gcfp_stat_name(pass ? GC_STAT_RX_MEDIA : GC_STAT_PASS_NOT_LOCAL));
		}
		gcfp_close(h);
		h = NULL;
		gcfp_detach("gin1", &err);
	}
	sh("ip addr del 10.78.0.2/24 dev gin1; ip addr del 10.78.0.1/24 dev gin1");
	return ret;
}

static int t_loader_busy(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin1", .port = 7000, .echo = 1 };
	struct gcfp_error err;
	int ret;

	/* Someone else's XDP program (ours, loaded by hand) holds the hook. */
	if (bpf_xdp_attach(if_nametoindex("gin1"),
			   bpf_program__fd(skel_echo->progs.groupcast_xdp), 0, NULL))
		return failf("attaching a foreign XDP program: %s", strerror(errno));
	ret = gcfp_attach(&o, &err);
	bpf_xdp_detach(if_nametoindex("gin1"), 0, NULL);
	CHECK(ret == -GCFP_ERR_BUSY, "attach over a foreign program: %d %s", ret, err.message);
	return 0;
}

static int t_loader_not_root(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return failf("fork: %s", strerror(errno));
	if (pid == 0) {
		struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct data[2] = {};
		struct gcfp_attach_opts o = { .ifname = "gin1", .port = 7000, .echo = 1 };
		struct gcfp_error err;

		if (syscall(SYS_capset, &hdr, data))
			_exit(3);
		_exit(gcfp_attach(&o, &err) == -GCFP_ERR_NOT_ROOT &&
		      strstr(err.message, "root") ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		return failf("waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "attach without capabilities did not fail with GCFP_ERR_NOT_ROOT (status %d)",
	      status);
	return 0;
}

/* The default verifier log is root's file in a directory nobody else can
 * enter or predict: a symlink planted at the old fixed path
 * (/tmp/groupcast-verifier-IFACE.log) must not redirect the write, and two
 * saves must not share a directory. */
static int t_loader_verifier_log_private(void)
{
	const char *planted = "/tmp/groupcast-verifier-gin0.log";
	char victim[] = "/tmp/gc-victim.XXXXXX", dir[2][256], buf[16] = {};
	struct gcfp_error err[2];
	struct stat st;
	int fd, i, ret = 0;

	fd = mkstemp(victim);
	if (fd < 0)
		return failf("mkstemp: %s", strerror(errno));
	if (write(fd, "intact", 6) != 6) {
		close(fd);
		return failf("write");
	}
	close(fd);
	unlink(planted);
	if (symlink(victim, planted)) {
		unlink(victim);
		return failf("symlink: %s", strerror(errno));
	}
	for (i = 0; i < 2 && !ret; i++) {
		char *slash;

		memset(&err[i], 0, sizeof(err[i]));
		if (gcfp_save_verifier_log(NULL, "gin0", &err[i])) {
			ret = failf("saving the log failed: %s", strerror(errno));
			break;
		}
		snprintf(dir[i], sizeof(dir[i]), "%s", err[i].log_path);
		slash = strrchr(dir[i], '/');
		if (!slash || slash == dir[i]) {
			ret = failf("log %s is not in a directory of its own", err[i].log_path);
			break;
		}
		*slash = 0;
		if (lstat(dir[i], &st) || !S_ISDIR(st.st_mode) || (st.st_mode & 0777) != 0700 ||
		    st.st_uid != geteuid())
			ret = failf("log directory %s is not a private 0700 directory (mode %o)",
				    dir[i], st.st_mode & 07777);
		else if (lstat(err[i].log_path, &st) || !S_ISREG(st.st_mode) ||
			 (st.st_mode & 077))
			ret = failf("log %s is not a regular file private to its owner",
				    err[i].log_path);
	}
	if (!ret && !strcmp(dir[0], dir[1]))
		ret = failf("two logs share the directory %s (predictable)", dir[0]);
	fd = open(victim, O_RDONLY);
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) < 0)
			buf[0] = 0;
		close(fd);
	}
	if (!ret && strcmp(buf, "intact"))
		ret = failf("the planted symlink redirected the log into %s", victim);
	for (i = 0; i < 2; i++)
		if (err[i].log_path[0] && strcmp(err[i].log_path, planted)) {
			unlink(err[i].log_path);
			rmdir(dir[i]);
		}
	unlink(planted);
	unlink(victim);
	return ret;
}

/*
 * The corpus end to end: the fast path attached to gin0 by the loader (real
 * XDP + TC on a veth, gin0 given the corpus's MAC and addresses), every
 * frame sent into gin1 with AF_PACKET, and an ordinary UDP socket on the
 * SFU port standing for the xdp backend's slow path. Per frame: the XDP
 * counter moves as labelled; media of a registered stream is replicated
 * (a copy on gr0) and does not reach the socket; a frame the fast path
 * leaves to the stack reaches the socket exactly when the corpus says the
 * socket path sees it (socket column forward or a drop reason the SFU
 * counts) and never when it says the kernel drops it.
 */
static int recv_count(int fd)
{
	uint8_t b[PKT_MAX];
	int n = 0;

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

static int e2e_corpus(int ingress)
{
	struct gcfp_attach_opts o = { .ifname = "gin0", .port = SFU_PORT, .echo = 1,
				      .ingress = ingress };
	struct bpf_xdp_query_opts q = { .sz = sizeof(q) };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_halen = 6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(SFU_PORT) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(SFU_PORT) };
	struct gc_subscriber sub4, sub6;
	uint8_t sub_mac[6] = { 0x02, 0xcc, 0, 0, 0, 1 }, sub4_ip[4] = { 10, 0, 99, 1 };
	uint8_t sub6_ip[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99, 1 };
	struct gcfp_handle *h = NULL;
	struct gcfp_error err;
	int tx = -1, s4 = -1, s6 = -1, one = 1, ret = 0, ok = 0, stack = 0;
	size_t i;

	if (sh("ip link set gin0 address 02:5f:00:00:00:fe") ||
	    write_file("/proc/sys/net/ipv6/conf/gin0/disable_ipv6", "0") ||
	    sh("ip addr replace 10.0.0.254/24 dev gin0") ||
	    sh("ip -6 addr replace fd00::fe/64 dev gin0 nodad"))
		return failf("configuring gin0");
	if (gcfp_attach(&o, &err))
		return failf("attach: %s", err.message);
	/* GC_INGRESS_TC: no XDP program on the device, the TC program judges alone. */
	if (bpf_xdp_query(if_nametoindex("gin0"), 0, &q) ||
	    (ingress == GC_INGRESS_TC) != (q.prog_id == 0)) {
		ret = failf("XDP program %u on gin0 with ingress %d", q.prog_id, ingress);
		goto out;
	}
	if (gcfp_open("gin0", &h, &err)) {
		ret = failf("open: %s", err.message);
		goto out;
	}
	if (gcfp_subscriber_init(&sub4, 4, sub4_ip, 6000, sub_mac, ifi_sub[0], 0, &err) ||
	    gcfp_subscriber_init(&sub6, 6, sub6_ip, 6000, sub_mac, ifi_sub[0], 0, &err) ||
	    gcfp_route_set(h, SSRC_V4, 4, V4_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_ASQ, &sub4, 1, &err) ||
	    gcfp_route_set(h, SSRC_V6, 6, V6_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_ASQ, &sub6, 1, &err) ||
	    gcfp_route_set_userspace(h, SSRC_FANOUT, 4, V4_ORIGIN, ORIGIN_PORT, 0, GC_STREAM_ASQ,
				     &err) != 1) {
		ret = failf("routes: %s", err.message);
		goto out;
	}
	tx = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx < 0 || s4 < 0 || s6 < 0 ||
	    setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    bind(s4, (struct sockaddr *)&a4, sizeof(a4)) || bind(s6, (struct sockaddr *)&a6, sizeof(a6))) {
		ret = failf("sockets: %s", strerror(errno));
		goto out;
	}
	to.sll_ifindex = if_nametoindex("gin1");
	usleep(100000);
	recv_count(s4);
	recv_count(s6);
	for (i = 0; i < n_corpus; i++) {
		const struct corpus_frame *c = &corpus[i];
		uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
		int got, copies, media = c->stat == GC_STAT_RX_MEDIA, want = -1, k;
		const char *why = NULL;

		drain(cap_fd[0]);
		if (gcfp_stats(h, before, &err) ||
		    sendto(tx, c->f, c->len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)c->len) {
			ret = failf("%s: send or stats: %s", c->name, strerror(errno));
			break;
		}
		usleep(30000);
		got = recv_count(s4) + recv_count(s6);
		copies = 0;
		{
			struct frame fr[4];

			copies = capture(cap_fd[0], fr, 4, media ? 1 : 0);
		}
		gcfp_stats(h, after, &err);
		for (k = 0; k < GC_STAT_MAX; k++) {
			uint64_t d = after[k] - before[k], w = 0;

			if (k == c->stat || (k == GC_STAT_RX && c->rx))
				w = 1;
			if (media && (k == GC_STAT_FORWARDED || k == GC_STAT_ECHOED))
				w = 1;
			if (d != w) {
				why = gcfp_stat_name(k);
				break;
			}
		}
		if (c->verdict == XDP_PASS && !media && strcmp(c->socket, "stack") &&
		    strcmp(c->socket, "none"))
			want = strcmp(c->socket, "kernel") ? 1 : 0;
		else if (c->verdict == XDP_DROP || media)
			want = 0;
		if (!strcmp(c->socket, "stack")) {
			printf("# e2e corpus: %s: left to the stack, which %s it to the socket\n", c->name,
			       got ? "delivered" : "did not deliver");
			stack++;
		}
		if (why) {
			printf("# e2e corpus: %s: counter %s moved by %lld\n", c->name, why,
			       (long long)(after[stat_by_name(why)] - before[stat_by_name(why)]));
		} else if (want >= 0 && got != want) {
			printf("# e2e corpus: %s: the socket got %d, want %d (socket: %s)\n", c->name, got,
			       want, c->socket);
		} else if (copies != (media ? 1 : 0)) {
			printf("# e2e corpus: %s: %d copies at the subscriber, want %d\n", c->name, copies,
			       media);
		} else {
			ok++;
		}
	}
	if (!ret && ok != (int)n_corpus)
		ret = failf("%d of %zu corpus frames as labelled end to end", ok, n_corpus);
out:
	if (tx >= 0)
		close(tx);
	if (s4 >= 0)
		close(s4);
	if (s6 >= 0)
		close(s6);
	gcfp_close(h);
	gcfp_detach("gin0", &err);
	return ret;
}

static int t_e2e_corpus(void) { return e2e_corpus(GC_INGRESS_XDP); }
static int t_e2e_corpus_tc(void) { return e2e_corpus(GC_INGRESS_TC); }

/* The next IPv4 frame received on @fd (an ETH_P_ALL capture), skipping what
 * this host sent itself (PACKET_OUTGOING), with its VLAN tag put back; 0:
 * none within @timeout_ms of quiet. */
static ssize_t capture_incoming(int fd, uint8_t *out, size_t size, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct sockaddr_ll from;
	socklen_t flen;
	uint8_t skip[PKT_MAX];
	ssize_t n;

	while (poll(&p, 1, timeout_ms) > 0) {
		flen = sizeof(from);
		n = recvfrom(fd, skip, sizeof(skip), MSG_PEEK, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return -1;
		if (from.sll_pkttype == PACKET_OUTGOING) {
			recv(fd, skip, sizeof(skip), 0);
			continue;
		}
		n = capture_one(fd, out, size);
		/* IPv4 only: the interface's own IPv6 chatter is not a reply. */
		if (n >= 18 && ((out[12] == 0x08 && out[13] == 0x00) ||
				(out[12] == 0x81 && out[13] == 0x00 && out[16] == 0x08 && out[17] == 0x00)))
			return n;
	}
	return 0;
}

/*
 * VLANs end to end through the attached fast path (XDP sees the tag in the
 * frame, the stack moves it out of band before TC): media of the origin
 * registered through VLAN 10, sent tagged into gin1, reaches subscribers on
 * VLAN 10, untagged and on VLAN 20, each copy with its tag, and comes back
 * out of gin0 tagged 10 (the echo); the origin's address from VLAN 20 is
 * dropped as spoofed and VLAN 30 as vlan, neither with a copy. The host
 * kernel has no CONFIG_VLAN_8021Q, so the VLAN devices are entered in the
 * local map as the loader enters them (gcfp_local_addrs), not made.
 */
static int t_e2e_vlan(void)
{
	struct gcfp_attach_opts o = { .ifname = "gin0", .port = SFU_PORT, .echo = 1 };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_halen = 6 };
	struct gc_subscriber subs[3];
	struct sub_def defs[3];
	struct gcfp_handle *h = NULL;
	struct gcfp_error err;
	struct pkt_spec spec, echo;
	uint64_t before[GC_STAT_MAX], after[GC_STAT_MAX];
	uint8_t in[PKT_MAX], exp[PKT_MAX], got[PKT_MAX];
	char dir[256], path[PATH_MAX];
	int tx = -1, back = -1, local = -1, ret = 0, i, round;
	size_t len, elen;
	ssize_t glen;

	if (sh("ip link set gin0 address 02:5f:00:00:00:fe"))
		return failf("configuring gin0");
	if (gcfp_attach(&o, &err))
		return failf("attach: %s", err.message);
	if (gcfp_open("gin0", &h, &err) || gcfp_pin_dir("gin0", dir, sizeof(dir), &err)) {
		ret = failf("open: %s", err.message);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, GC_PIN_LOCAL);
	local = bpf_obj_get(path);
	if (local < 0 || local_add_vlans(local)) {
		ret = failf("the VLANs into %s: %s", path, strerror(errno));
		goto out;
	}
	for (i = 0; i < 3; i++) {
		sub_def_v4(&defs[i], i, i);
		defs[i].vlan = i == 0 ? VLAN_A : i == 2 ? VLAN_B : 0;
		if (gcfp_subscriber_init(&subs[i], 4, defs[i].addr, defs[i].port, defs[i].mac,
					 ifi_sub[i], defs[i].vlan, &err)) {
			ret = failf("subscriber: %s", err.message);
			goto out;
		}
	}
	if (gcfp_route_set(h, SSRC_V10, 4, V4_ORIGIN_A, ORIGIN_PORT, VLAN_A, GC_STREAM_ASQ, subs, 3,
			   &err)) {
		ret = failf("route: %s", err.message);
		goto out;
	}
	tx = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	back = open_capture("gin1");
	if (tx < 0 || back < 0) {
		ret = failf("packet sockets: %s", strerror(errno));
		goto out;
	}
	to.sll_ifindex = if_nametoindex("gin1");
	for (round = 0; round < 3 && !ret; round++) {
		static const uint16_t vlan[3] = { VLAN_A, VLAN_B, VLAN_NONE };
		static const int stat[3] = { GC_STAT_RX_MEDIA, GC_STAT_DROP(GC_DROP_SPOOFED),
					     GC_STAT_DROP(GC_DROP_VLAN) };
		struct frame fr[4];

		spec_media(&spec, 4, SSRC_V10, vlan[round], 100);
		memcpy(spec.saddr, V4_ORIGIN_A, 4);
		memcpy(spec.daddr, round == 1 ? V4_SFU_B : V4_SFU_A, 4);
		len = pkt_build(&spec, in, NULL);
		for (i = 0; i < N_SUB_DEVS; i++)
			drain(cap_fd[i]);
		drain(back);
		if (gcfp_stats(h, before, &err) ||
		    sendto(tx, in, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len) {
			ret = failf("send or stats: %s", strerror(errno));
			break;
		}
		if (round == 0) {
			if (check_all_copies(&spec, defs, 3)) {
				ret = -1;
				break;
			}
			echo = spec;	/* tagged 10, as the origin sent it */
			elen = expect_echo(&echo, exp);
			glen = capture_incoming(back, got, sizeof(got), 2000);
			if (frame_eq(got, glen > 0 ? glen : 0, exp, elen, "echo at the origin")) {
				ret = -1;
				break;
			}
		} else {
			for (i = 0; i < 3 && !ret; i++)
				if (capture(cap_fd[i], fr, 4, 0))
					ret = failf("VLAN %u: a copy reached gr%d", vlan[round], i);
			if (!ret && (glen = capture_incoming(back, got, sizeof(got), 200)) > 0)
				ret = failf("VLAN %u: a frame came back to the origin (%zd bytes, type %02x%02x %02x%02x)",
					    vlan[round], glen, got[12], got[13], got[16], got[17]);
		}
		if (ret || gcfp_stats(h, after, &err))
			break;
		if (round == 0)
			ret = stats_expect(before, after, GC_STAT_RX, 1, GC_STAT_RX_MEDIA, 1,
					   GC_STAT_FORWARDED, 3, GC_STAT_ECHOED, 1, -1);
		else
			ret = stats_expect(before, after, GC_STAT_RX, 1, stat[round], 1, -1);
	}
out:
	if (tx >= 0)
		close(tx);
	if (back >= 0)
		close(back);
	if (local >= 0)
		close(local);
	gcfp_close(h);
	gcfp_detach("gin0", &err);
	return ret;
}

/*
 * Real 802.1Q VLAN devices (needs CONFIG_VLAN_8021Q: not in the host kernel
 * of this project's machines, in the Debian VM kernels): gcfp_local_addrs()
 * lists gin0's VLAN devices (VLAN 10 with an address, VLAN 20 without) as
 * served, with VLAN 10's address keyed with 10, but not an 802.1ad device
 * (VLAN 30); with a listen address only that one; and the next hop of an
 * address behind gin0.10 is gin0 with VLAN 10, its MAC the neighbour's on
 * gin0.10.
 */
static int t_vlan_devices(void)
{
	struct gc_local_addr out[GC_MAX_LOCAL_ADDRS], listen = { .family = GC_FAMILY_IPV4,
								 .addr = { 10, 10, 0, 254 } };
	static const uint8_t nb[4] = { 10, 10, 0, 7 }, nb_mac[6] = { 2, 0, 0, 0, 0x10, 7 };
	struct gcfp_nexthop nh;
	struct gcfp_error err;
	int n, i, v10 = 0, v20 = 0, v30 = 0, a10 = 0, ret = 0;

	if (sh("ip link add link gin0 name gin0.10 type vlan id 10 2>/dev/null")) {
		failf("no 802.1Q VLAN devices in this kernel (CONFIG_VLAN_8021Q)");
		return SKIPPED;
	}
	if (sh("ip link add link gin0 name gin0.20 type vlan id 20") ||
	    sh("ip link add link gin0 name gin0.30 type vlan proto 802.1ad id 30") ||
	    sh("ip link set gin0.10 up && ip addr add 10.10.0.254/24 dev gin0.10") ||
	    sh("ip neigh replace 10.10.0.7 lladdr 02:00:00:00:10:07 dev gin0.10 nud permanent")) {
		ret = failf("setting up gin0.10, gin0.20, gin0.30");
		goto out;
	}
	n = gcfp_local_addrs("gin0", NULL, out, GC_MAX_LOCAL_ADDRS);
	for (i = 0; i < n; i++) {
		v10 += out[i].family == GC_FAMILY_VLAN && out[i].vlan_id == 10;
		v20 += out[i].family == GC_FAMILY_VLAN && out[i].vlan_id == 20;
		v30 += out[i].vlan_id == 30;
		a10 += out[i].family == GC_FAMILY_IPV4 && out[i].vlan_id == 10 &&
		       !memcmp(out[i].addr, listen.addr, 4);
	}
	if (n < 0 || v10 != 1 || v20 != 1 || v30 || a10 != 1) {
		ret = failf("gcfp_local_addrs: %d entries; VLAN 10 %d, 20 %d, 30 (802.1ad) %d times, "
			    "10.10.0.254 on VLAN 10 %d times", n, v10, v20, v30, a10);
		goto out;
	}
	n = gcfp_local_addrs("gin0", &listen, out, GC_MAX_LOCAL_ADDRS);
	for (i = 0, a10 = 0; i < n; i++)
		a10 += out[i].family != GC_FAMILY_VLAN;
	if (n != 3 || a10 != 1) {
		ret = failf("with a listen address: %d entries, %d addresses (want the 2 VLANs and it)",
			    n, a10);
		goto out;
	}
	if (gcfp_resolve_nexthop(GC_FAMILY_IPV4, nb, 0, &nh, &err)) {
		ret = failf("next hop of 10.10.0.7: %s", err.message);
		goto out;
	}
	if (nh.ifindex != (uint32_t)ifi_in || nh.vlan_id != 10 || strcmp(nh.vlan_ifname, "gin0.10") ||
	    nh.vlan_ifindex != if_nametoindex("gin0.10") || memcmp(nh.dst_mac, nb_mac, 6))
		ret = failf("next hop of 10.10.0.7: dev %s (%u) vlan %u via %s, want gin0 vlan 10 via gin0.10",
			    nh.ifname, nh.ifindex, nh.vlan_id, nh.vlan_ifname);
out:
	sh("ip link del gin0.10 2>/dev/null; ip link del gin0.20 2>/dev/null; ip link del gin0.30 2>/dev/null");
	return ret;
}

/* ---- main ---------------------------------------------------------------- */

struct named_test {
	const char *name;
	int (*fn)(void);
};

static const struct named_test tests[] = {
	{ "loader: the local-address map follows the interface's addresses (gcfp_local_refresh)",
	  t_loader_local_refresh },
	{ "tc: ipv4 forward to 3 subscribers + echo", t_tc_v4 },
	{ "tc: ipv6 forward to 3 subscribers + echo", t_tc_v6 },
	{ "tc: vlan 10 media: each copy with its subscriber's tag (10, none, 20, 20)", t_tc_vlan_copies },
	{ "tc: the vlan-10 origin's address from vlan 20 dropped as spoofed without xdp", t_tc_vlan_spoof },
	{ "tc: vlan without a vlan device dropped without xdp", t_tc_vlan_unknown },
	{ "tc: ipv4 udp checksum 0 stays 0", t_tc_zero_csum },
	{ "tc: echo off -> copies sent, original consumed", t_tc_no_echo },
	{ "tc: ipv6 copy whose udp checksum computes to 0 carries 0xffff", t_tc_v6_csum_mangled0 },
	{ "tc: ipv4 fan-out of GC_MAX_SUBSCRIBERS", t_tc_fanout_v4 },
	{ "tc: ipv6 fan-out of GC_MAX_SUBSCRIBERS", t_tc_fanout_v6 },
	{ "tc: missing egress device counted, others delivered", t_tc_missing_egress },
	{ "tc: subscriber of the wrong family skipped and counted", t_tc_family_mismatch },
	{ "tc: per-route media counters (received, forwarded, echoed, dropped, bytes)", t_tc_media_counters },
	{ "tc: spoofed source dropped without xdp", t_tc_spoof },
	{ "tc: udp length mismatch dropped without xdp", t_tc_malformed },
	{ "tc: bad rtp version dropped without xdp", t_tc_bad_rtp },
	{ "tc: unknown ssrc left to the stack", t_tc_unknown },
	{ "tc: other port left to the stack", t_tc_other_port },
	{ "tc: wrong udp checksum left to the stack without xdp", t_tc_bad_csum },
	{ "xdp: metadata arriving with a wrong-checksum frame does not leave as a vouch", t_xdp_meta_in_bad_csum },
	{ "xdp: metadata arriving with valid media does not leave as a vouch", t_xdp_meta_in_media },
	{ "vouch: media through its own xdp (live) -> tc replicates it", t_vouch_own },
	{ "vouch: wrong udp checksum through its own xdp (live) -> not vouched, not replicated", t_vouch_own_bad_csum },
	{ "vouch: a forger with this load's key, ifindex and the frame's fields is trusted (what the key guards)", t_vouch_forged_exact },
	{ "vouch: wrong udp checksum, metadata without the magic -> verified, not replicated", t_vouch_none },
	{ "vouch: wrong udp checksum, another key -> verified, not replicated", t_vouch_other_key },
	{ "vouch: wrong udp checksum, another interface -> verified, not replicated", t_vouch_other_if },
	{ "vouch: wrong udp checksum, another checksum field -> verified, not replicated", t_vouch_other_check },
	{ "vouch: wrong udp checksum, another udp length -> verified, not replicated", t_vouch_other_len },
	{ "vouch: wrong udp checksum, another ssrc -> verified, not replicated", t_vouch_other_ssrc },
	{ "vouch: not to this host, a forger's exact vouch is trusted (the local check is what it covers)", t_vouch_forged_not_local },
	{ "vouch: not to this host, another key -> local addresses looked up, not replicated", t_vouch_other_key_not_local },
	{ "tc: route replacement under traffic never mixes streams", t_tc_route_churn },
	{ "loader: no such device", t_loader_no_device },
	{ "loader: attach, status, routes, detach, generic mode", t_loader_lifecycle },
	{ "loader: tc ingress attaches no xdp program, status says so, detach; unknown ingress refused", t_loader_tc_ingress },
	{ "loader: attached with a listen address, only media to it is replicated", t_loader_listen },
	{ "loader: busy hook", t_loader_busy },
	{ "loader: not root", t_loader_not_root },
	{ "loader: verifier log in a private directory", t_loader_verifier_log_private },
	{ "e2e: the corpus through an attached fast path and the stack", t_e2e_corpus },
	{ "e2e: the corpus through a fast path attached with tc ingress (no xdp) and the stack", t_e2e_corpus_tc },
	{ "loader: gin0's 802.1Q VLAN devices served, next hop through gin0.10 is gin0 vlan 10", t_vlan_devices },
	{ "e2e: vlan 10 media copied with each subscriber's tag and echoed tagged; vlan 20 spoof and vlan 30 dropped", t_e2e_vlan },
};

static void bench_xdp(void)
{
	uint8_t in[PKT_MAX], out[PKT_MAX];
	struct pkt_spec spec;
	size_t len;

	spec_media(&spec, 4, SSRC_V4, 0, 160);
	len = pkt_build(&spec, in, NULL);
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1000000);

		if (!bpf_prog_test_run_opts(bpf_program__fd(skel_echo->progs.groupcast_xdp), &o))
			printf("# xdp validate+lookup: %u ns per packet (BPF_PROG_TEST_RUN repeat 1e6)\n",
			       o.duration);
	}
}

int main(int argc, char **argv)
{
	size_t n_xdp = sizeof(xdp_cases) / sizeof(xdp_cases[0]);
	size_t n_tests = sizeof(tests) / sizeof(tests[0]), i;
	size_t n_vlan = sizeof(vlan_cases) / sizeof(vlan_cases[0]);

	if (argc > 2 && !strcmp(argv[1], "--write-corpus")) {
		char *t = corpus_text();
		FILE *fp = fopen(argv[2], "w");

		if (!t || !fp || fputs(t, fp) < 0 || fclose(fp)) {
			perror(argv[2]);
			return 1;
		}
		free(t);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..%zu\n", 2 * (n_xdp + n_vlan) + n_tests + 3);
	if (geteuid() != 0) {
		printf("Bail out! needs root (network namespaces, BPF)\n");
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:1\n");
		return 1;
	}
	if (setup_netns()) {
		printf("Bail out! cannot set up the test network namespace \n");
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:1\n");
		return 1;
	}
	skel_echo = load_skel(1, GC_INGRESS_XDP);
	skel_noecho = load_skel(0, GC_INGRESS_XDP);
	skel_tcin = load_skel(1, GC_INGRESS_TC);
	if (!skel_echo || !skel_noecho || !skel_tcin) {
		printf("Bail out! the BPF programs did not load\n");
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:1\n");
		return 1;
	}
	/* Routes of the XDP fixtures. */
	if (fixture_routes(skel_echo) || fixture_routes(skel_tcin)) {
		printf("Bail out! cannot install routes\n");
		return 1;
	}
	report("corpus: bpf/tests/corpus/frames.txt is the fixture table's", t_corpus_current());
	if (corpus_load(corpus_path()) || n_corpus != n_xdp) {
		printf("Bail out! cannot read the corpus %s (%zu frames)\n", corpus_path(), n_corpus);
		return 1;
	}
	for (i = 0; i < n_corpus; i++)
		report(corpus[i].name, run_xdp_case(&corpus[i]));
	for (i = 0; i < n_vlan; i++)
		report(vlan_cases[i].name, run_vlan_case(&vlan_cases[i]));
	for (i = 0; i < n_corpus; i++) {
		char name[160];

		snprintf(name, sizeof(name), "tc ingress, as xdp+tc: %.127s", corpus[i].name);
		report(name, tc_ingress_same(corpus[i].f, corpus[i].len));
	}
	for (i = 0; i < n_vlan; i++) {
		struct corpus_frame *fr = calloc(1, sizeof(*fr));
		struct pkt_spec spec;
		char name[160];

		if (!fr)
			return 1;
		fr->len = vlan_case_frame(&vlan_cases[i], fr->f, &spec);
		snprintf(name, sizeof(name), "tc ingress, as xdp+tc: %.127s", vlan_cases[i].name);
		report(name, tc_ingress_same(fr->f, fr->len));
		free(fr);
	}
	report("tc ingress: the corpus was replicated, dropped and passed up (the comparison is not empty)",
	       t_tc_ingress_covered());
	report("corpus: the XDP counters never show more datagram drops than rx", t_drops_within_rx());
	for (i = 0; i < n_tests; i++)
		report(tests[i].name, tests[i].fn());
	if (argc > 1 && !strcmp(argv[1], "--bench"))
		bench_xdp();
	groupcast__destroy(skel_echo);
	groupcast__destroy(skel_noecho);
	groupcast__destroy(skel_tcin);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", n_pass, n_fail, n_skip);
	return n_fail ? 1 : 0;
}
