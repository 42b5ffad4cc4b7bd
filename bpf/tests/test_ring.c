// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * test_ring.c - the AF_XDP ring core (bpf/ring/ring.c)
 * against a simulated kernel: rings and UMEM in ordinary memory, this file
 * playing the kernel's part (fill -> RX on receive, TX -> completion on a
 * kick). It tracks which frames the "kernel" holds, so a frame handed over
 * twice is caught when it happens and a frame lost in user space shows up as
 * a difference between the ring's counters and the kernel's holdings.
 *
 * TAP output; the last line is kselftest's "# Totals: ..." (tally.sh).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_xdp.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <poll.h>

#include "groupcast_ring.h"
#include "pkt.h"

#define PORTS		2
#define RING_SIZE	256
#define FRAME_SIZE	2048
#define HEADROOM	256	/* where copy-mode AF_XDP puts received data in a frame */
#define SFU_PORT	7002

struct sim {
	struct gc_ring *ring;
	struct gc_ring_sim_port view[PORTS];
	__u32 n_frames;
	unsigned char *kernel_holds[PORTS];	/* 1: frame in fill/RX or TX/completion */
	__u64 held[PORTS];
	__u32 fill_seen[PORTS];			/* fill-ring entries already claimed */
	int blocked_kicks;			/* kicks to refuse (TX "full") before draining */
	__u64 refused, sent, bad_csum, double_use, rx_no_frame;
	__u64 to_sub[PORTS], echoes;
	int corpus;				/* copies checked for checksums only */
	struct { int port; __u32 len; __u8 b[PKT_MAX]; } kept[8];	/* test_vlan: what went out */
	int n_kept, keep;
};

static int n_pass, n_fail, n_test;

static void result(int ok, const char *fmt, ...)
{
	va_list ap;

	n_test++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		n_pass++;
	else
		n_fail++;
}

static const __u8 sfu_mac[PORTS][6] = { { 2, 0, 0, 0, 0, 1 }, { 2, 0, 0, 0, 1, 1 } };
static const __u8 sfu_ip[PORTS][4] = { { 10, 9, 0, 1 }, { 10, 9, 1, 1 } };
/* Participants: 0 (origin) and 1 behind port 0, 2 and 3 behind port 1. */
static const __u8 part_mac[4][6] = { { 2, 1, 0, 0, 0, 2 }, { 2, 1, 0, 0, 0, 3 }, { 2, 1, 0, 0, 1, 2 }, { 2, 1, 0, 0, 1, 3 } };
static const __u8 part_ip[4][4] = { { 10, 9, 0, 2 }, { 10, 9, 0, 3 }, { 10, 9, 1, 2 }, { 10, 9, 1, 3 } };
static const __u16 part_port[4] = { 5000, 5001, 5002, 5003 };
#define SSRC_ORIGIN	0x1000
#define SSRC_UNKNOWN	0x2000

static int take(struct sim *s, int port, __u64 addr)
{
	__u32 frame = addr / FRAME_SIZE;

	if (frame >= s->n_frames || s->kernel_holds[port][frame]) {
		s->double_use++;
		return -1;
	}
	s->kernel_holds[port][frame] = 1;
	s->held[port]++;
	return 0;
}

static void give_back(struct sim *s, int port, __u64 addr)
{
	s->kernel_holds[port][addr / FRAME_SIZE] = 0;
	s->held[port]--;
}

/* The kernel receiving a frame on @port: a fill-ring buffer -> RX. */
static int sim_receive(struct sim *s, int port, const __u8 *frame, size_t len)
{
	struct gc_ring_sim_port *v = &s->view[port];
	__u32 prod = *v->fill->producer, cons = *v->fill->consumer;
	struct xdp_desc *d;
	__u64 addr;

	if (prod == cons || *v->rx->producer - *v->rx->consumer == v->rx->size) {
		s->rx_no_frame++;
		return -1;
	}
	addr = ((__u64 *)v->fill->descs)[cons & v->fill->mask];
	__atomic_store_n(v->fill->consumer, cons + 1, __ATOMIC_RELEASE);
	/* A fill-ring frame stays the kernel's until RX hands it over: it is
	 * "held" from the fill ring on, and user space owns it again when it
	 * takes it from RX (gc_ring_frames counts it under fill until then). */
	memcpy((__u8 *)v->umem + addr + HEADROOM, frame, len);
	d = &((struct xdp_desc *)v->rx->descs)[*v->rx->producer & v->rx->mask];
	d->addr = addr + HEADROOM;
	d->len = len;
	d->options = 0;
	__atomic_store_n(v->rx->producer, *v->rx->producer + 1, __ATOMIC_RELEASE);
	give_back(s, port, addr);	/* user space's again, through RX */
	return 0;
}

/* Frames the ring put into the fill ring since we last looked: the kernel's. */
static void sim_claim_fill(struct sim *s, int port)
{
	struct gc_ring_sim_port *v = &s->view[port];
	__u32 prod = *v->fill->producer;

	for (; s->fill_seen[port] != prod; s->fill_seen[port]++)
		take(s, port, ((__u64 *)v->fill->descs)[s->fill_seen[port] & v->fill->mask]);
}

static int check_frame(struct sim *s, int port, const __u8 *f, __u32 len)
{
	const char *why;
	int i;

	if (pkt_check_csums(f, len, &why)) {
		s->bad_csum++;
		return -1;
	}
	if (s->corpus)
		return 0;
	/* From the egress port's MAC and the address the origin sent to
	 * (sfu_ip[0]), whichever port the copy leaves through. */
	if (memcmp(f + 6, sfu_mac[port], 6) || memcmp(f + 14 + 12, sfu_ip[0], 4) ||
	    (f[14 + 20] << 8 | f[14 + 21]) != SFU_PORT) {
		s->bad_csum++;
		return -1;
	}
	for (i = 0; i < 4; i++) {
		if (!memcmp(f, part_mac[i], 6) && !memcmp(f + 14 + 16, part_ip[i], 4) &&
		    (f[14 + 22] << 8 | f[14 + 23]) == part_port[i]) {
			if (i == 0)
				s->echoes++;
			else
				s->to_sub[port]++;
			return 0;
		}
	}
	s->bad_csum++;
	return -1;
}

/* The kernel's side of sendto(): TX -> (wire) -> completion. */
static int sim_kick(void *ctx, int port)
{
	struct sim *s = ctx;
	struct gc_ring_sim_port *v = &s->view[port];
	__u32 cons = *v->tx->consumer, prod = *v->tx->producer;

	if (s->blocked_kicks > 0) {
		s->blocked_kicks--;
		s->refused++;
		return -EAGAIN;
	}
	for (; cons != prod; cons++) {
		struct xdp_desc *d = &((struct xdp_desc *)v->tx->descs)[cons & v->tx->mask];
		__u32 cprod = *v->comp->producer;

		if (cprod - *v->comp->consumer == v->comp->size)
			break;	/* completion ring full: the kernel stops (xsk_cq_reserve_addr) */
		take(s, port, d->addr & ~(__u64)(FRAME_SIZE - 1));
		check_frame(s, port, (__u8 *)v->umem + d->addr, d->len);
		if (s->keep && s->n_kept < 8 && d->len <= PKT_MAX) {
			s->kept[s->n_kept].port = port;
			s->kept[s->n_kept].len = d->len;
			memcpy(s->kept[s->n_kept++].b, (__u8 *)v->umem + d->addr, d->len);
		}
		s->sent++;
		((__u64 *)v->comp->descs)[cprod & v->comp->mask] = d->addr;
		__atomic_store_n(v->comp->producer, cprod + 1, __ATOMIC_RELEASE);
		give_back(s, port, d->addr & ~(__u64)(FRAME_SIZE - 1));
	}
	__atomic_store_n(v->tx->consumer, cons, __ATOMIC_RELEASE);
	return cons == prod ? 0 : -EAGAIN;
}

static size_t build(__u8 *buf, int from, __u32 ssrc, __u16 seq, int kind)
{
	__u8 payload[200];
	struct pkt_spec sp = { .family = 4, .ttl = 64, .sport = part_port[from], .dport = SFU_PORT };
	struct pkt_layout lay;
	size_t len, plen = rtp_build(payload, ssrc, seq, 96, kind == 3 ? 4 : 60 + seq % 100);

	if (kind == 1)
		payload[0] = 0x40;		/* RTP version 1: malformed */
	else if (kind == 2)
		payload[1] = 200;		/* RTCP SR */
	else if (kind == 3)
		payload[0] = 0x8f;		/* 15 CSRCs that are not there */
	memcpy(sp.dmac, sfu_mac[from >= 2], 6);
	memcpy(sp.smac, part_mac[from], 6);
	memcpy(sp.saddr, part_ip[from], 4);
	memcpy(sp.daddr, sfu_ip[from >= 2], 4);
	sp.payload = payload;
	sp.payload_len = plen;
	len = pkt_build(&sp, buf, &lay);
	if (kind == 30) {
		/* Sent by a local socket with the checksum offloaded (CHECKSUM_PARTIAL):
		 * the field holds the folded pseudo-header sum only. */
		size_t ulen = len - lay.l4;
		__u16 partial = csum_fold32(csum_add_bytes(csum_add_bytes(17 + (__u32)ulen, sp.saddr, 4), sp.daddr, 4));

		buf[lay.l4 + 6] = partial >> 8;
		buf[lay.l4 + 7] = partial & 0xff;
	}
	return len;
}

static struct gc_ring_table *table(void)
{
	struct gc_ring_table *t = gc_ring_table_new(8, 1);
	struct gc_subscriber subs[3] = {};
	__u8 origin[16] = {};
	int i;

	for (i = 0; i < 3; i++) {
		int who = i + 1;

		subs[i].ifindex = who >= 2 ? 12 : 11;
		subs[i].family = GC_FAMILY_IPV4;
		subs[i].port = htons(part_port[who]);
		memcpy(subs[i].dst_mac, part_mac[who], 6);
		memcpy(subs[i].addr, part_ip[who], 4);
	}
	memcpy(origin, part_ip[0], 4);
	if (gc_ring_table_add(t, SSRC_ORIGIN, GC_FAMILY_IPV4, GC_STREAM_ASQ, origin, htons(part_port[0]), 0, subs, 3))
		return NULL;
	return t;
}

/* Ring counters against what the simulated kernel holds. */
static int accounting_ok(struct sim *s, const char *when)
{
	struct gc_ring_frames f;
	__u64 kernel = 0;
	int k;

	gc_ring_frames(s->ring, &f);
	for (k = 0; k < PORTS; k++) {
		sim_claim_fill(s, k);
		kernel += s->held[k];
	}
	if (f.total != (__u64)PORTS * s->n_frames || f.free + f.fill + f.tx != f.total ||
	    f.fill + f.tx != kernel || s->double_use) {
		printf("# %s: total %llu free %llu fill %llu tx %llu, kernel holds %llu, double use %llu\n", when,
		       (unsigned long long)f.total, (unsigned long long)f.free, (unsigned long long)f.fill,
		       (unsigned long long)f.tx, (unsigned long long)kernel, (unsigned long long)s->double_use);
		return 0;
	}
	return 1;
}

/* Until nothing is in RX or TX any more. */
static void drain(struct sim *s)
{
	int rounds = 100;

	while (rounds--) {
		struct gc_ring_frames f;

		gc_ring_process(s->ring, NULL);
		gc_ring_frames(s->ring, &f);
		for (int k = 0; k < PORTS; k++)
			sim_claim_fill(s, k);
		if (f.tx == 0)
			break;
	}
}

/* @n packets, @mix: every 50th malformed (two kinds), RTCP, of an unknown
 * SSRC, spoofed, and one whose checksum is the pseudo-header sum only (what
 * a local sender's offloaded checksum looks like, or a forgery). */
static void traffic(struct sim *s, long n, int mix, const volatile int *stop)
{
	__u8 buf[PKT_MAX];
	long i;

	for (i = 0; i < n; i++) {
		int kind = mix ? (int)(i % 50) : 0, from = 0;
		__u32 ssrc = SSRC_ORIGIN;
		size_t len;

		if (kind == 10)
			ssrc = SSRC_UNKNOWN;
		else if (kind == 20)
			from = 2;	/* spoofed: right SSRC, wrong source */
		len = build(buf, from, ssrc, (__u16)i, kind > 3 && kind != 30 ? 0 : kind);
		for (int k = 0; k < PORTS; k++)
			sim_claim_fill(s, k);
		if (sim_receive(s, from >= 2, buf, len)) {
			/* RX full or no fill buffers: let the SFU run, then retry. */
			gc_ring_process(s->ring, stop);
			i--;
			continue;
		}
		if (i % 64 == 63)
			gc_ring_process(s->ring, stop);
	}
}

static int sim_open_with(struct sim *s, int frames, __u16 port, struct gc_ring_port_info *infos,
			 struct gc_ring_table *t);

static int sim_open_with_table(struct sim *s, int frames, struct gc_ring_table *t)
{
	struct gc_ring_port_info infos[PORTS] = {};
	int k;

	for (k = 0; k < PORTS; k++) {
		memcpy(infos[k].mac, sfu_mac[k], 6);
		memcpy(infos[k].ipv4, sfu_ip[k], 4);
	}
	return sim_open_with(s, frames, SFU_PORT, infos, t);
}

static int sim_open(struct sim *s, int frames)
{
	return sim_open_with_table(s, frames, table());
}

/* The next sim_open*()'s coalesce_us (test_coalesce), reset by it. */
static __u32 next_coalesce_us;

static int sim_open_with(struct sim *s, int frames, __u16 port, struct gc_ring_port_info *infos,
			 struct gc_ring_table *t)
{
	struct gc_ring_opts o;
	struct gcfp_error err = {};
	int k;

	memset(s, 0, sizeof(*s));
	gc_ring_opts_init(&o);
	o.coalesce_us = next_coalesce_us;
	next_coalesce_us = 0;
	o.port = port;
	o.ring_size = RING_SIZE;
	o.frame_size = FRAME_SIZE;
	o.frame_count = frames;
	o.batch = 64;
	o.shed_vhq_permille = 1000;	/* no shedding: every packet is accounted for exactly */
	o.shed_vsq_permille = 1000;
	for (k = 0; k < PORTS; k++) {
		snprintf(infos[k].ifname, sizeof(infos[k].ifname), "sim%d", k);
		infos[k].ifindex = 11 + k;
	}
	if (gc_ring_open_simulated(&o, PORTS, infos, sim_kick, s, &s->ring, &err)) {
		printf("# gc_ring_open_simulated: %s\n", err.message);
		return -1;
	}
	s->n_frames = frames;
	for (k = 0; k < PORTS; k++) {
		s->kernel_holds[k] = calloc(frames, 1);
		gc_ring_sim_port(s->ring, k, &s->view[k]);
		sim_claim_fill(s, k);
	}
	gc_ring_install(s->ring, t);
	return 0;
}

static void sim_close(struct sim *s)
{
	gc_ring_close(s->ring);
	for (int k = 0; k < PORTS; k++)
		free(s->kernel_holds[k]);
}

static void test_million(void)
{
	struct sim s;
	struct gc_ring_stats st;
	const long n = 1000000;
	long valid = 0, i;

	if (sim_open(&s, 4 * RING_SIZE)) {
		result(0, "1e6 packets: open");
		return;
	}
	traffic(&s, n, 1, NULL);
	drain(&s);
	gc_ring_process(s.ring, NULL);
	gc_ring_stats(s.ring, &st);
	/* Kind 1 RTP version 1, 3 a CSRC list past the end, 2 RTCP, 10 unknown,
	 * 20 spoofed, 30 a checksum that is only the pseudo-header sum: dropped
	 * as udp_csum, never "completed" into a valid one. */
	for (i = 0; i < n; i++)
		valid += (i % 50) == 0 || (i % 50) > 3 ? ((i % 50) != 10 && (i % 50) != 20 && (i % 50) != 30) : 0;
	result(st.received == (__u64)n, "1e6 packets: all received (%llu)", (unsigned long long)st.received);
	result(st.forwarded == 3 * (__u64)valid && st.echoed == (__u64)valid,
	       "1e6 packets: %ld valid -> %llu copies, %llu echoes", valid,
	       (unsigned long long)st.forwarded, (unsigned long long)st.echoed);
	result(st.drops[GC_DROP_BAD_RTP_VERSION] == (__u64)(n / 50) && st.drops[GC_DROP_BAD_RTP_HEADER] == (__u64)(n / 50) &&
	       st.drops[GC_DROP_UDP_CSUM] == (__u64)(n / 50) && st.drops[GC_DROP_RTCP] == (__u64)(n / 50) &&
	       st.drops[GC_DROP_UNKNOWN_SSRC] == (__u64)(n / 50) && st.drops[GC_DROP_SPOOFED] == (__u64)(n / 50) &&
	       st.drops[GC_DROP_SEND_FAILED] == 0,
	       "1e6 packets: drops by reason (bad_rtp_version %llu bad_rtp_header %llu udp_csum %llu rtcp %llu "
	       "unknown %llu spoofed %llu send_failed %llu)",
	       (unsigned long long)st.drops[GC_DROP_BAD_RTP_VERSION], (unsigned long long)st.drops[GC_DROP_BAD_RTP_HEADER],
	       (unsigned long long)st.drops[GC_DROP_UDP_CSUM], (unsigned long long)st.drops[GC_DROP_RTCP],
	       (unsigned long long)st.drops[GC_DROP_UNKNOWN_SSRC], (unsigned long long)st.drops[GC_DROP_SPOOFED],
	       (unsigned long long)st.drops[GC_DROP_SEND_FAILED]);
	result(s.bad_csum == 0 && s.sent == st.forwarded + st.echoed && s.echoes == st.echoed &&
	       s.to_sub[0] == (__u64)valid && s.to_sub[1] == 2 * (__u64)valid,
	       "1e6 packets: every frame on the wire has valid checksums and the right addresses "
	       "(%llu sent, %llu bad, %llu/%llu per port)", (unsigned long long)s.sent, (unsigned long long)s.bad_csum,
	       (unsigned long long)s.to_sub[0], (unsigned long long)s.to_sub[1]);
	result(accounting_ok(&s, "after 1e6 packets"), "1e6 packets: no UMEM frame leaked or used twice");
	result(st.delay_count == (__u64)valid, "1e6 packets: one delay sample per forwarded packet (%llu TX stalls, %llu kicks)", (unsigned long long)st.tx_stalls, (unsigned long long)st.kicks);
	sim_close(&s);
}

static void test_tx_full(void)
{
	struct sim s;
	struct gc_ring_stats st;
	volatile int stop = 0;

	if (sim_open(&s, 4 * RING_SIZE)) {
		result(0, "TX full: open");
		return;
	}
	/* The "NIC" takes nothing for a while: TX fills up within a few
	 * batches and the ring must wait, keeping its pending copies. */
	s.blocked_kicks = 200;
	traffic(&s, 5000, 0, &stop);
	drain(&s);
	gc_ring_process(s.ring, NULL);
	gc_ring_stats(s.ring, &st);
	result(st.tx_stalls > 0 && st.tx_stall_ns > 0 && s.refused == 200,
	       "TX full: the ring waited (%llu stalls, %llu ns, %llu refused kicks)",
	       (unsigned long long)st.tx_stalls, (unsigned long long)st.tx_stall_ns, (unsigned long long)s.refused);
	result(st.forwarded == 3 * 5000 && st.echoed == 5000 && st.drops[GC_DROP_SEND_FAILED] == 0,
	       "TX full: nothing lost (%llu copies, %llu echoes, %llu failed)", (unsigned long long)st.forwarded,
	       (unsigned long long)st.echoed, (unsigned long long)st.drops[GC_DROP_SEND_FAILED]);
	result(accounting_ok(&s, "after a TX-full episode"), "TX full: no UMEM frame leaked or used twice");

	/* Stopped while waiting: the copies that could not go are counted as
	 * failed, their frames are not lost. */
	s.blocked_kicks = 1 << 30;
	stop = 1;
	traffic(&s, 500, 0, &stop);
	s.blocked_kicks = 0;
	drain(&s);
	gc_ring_process(s.ring, NULL);
	gc_ring_stats(s.ring, &st);
	result(st.drops[GC_DROP_SEND_FAILED] > 0 &&
	       st.forwarded + st.echoed + st.drops[GC_DROP_SEND_FAILED] == 4 * 5500,
	       "TX full + stop: every copy sent or counted as failed (%llu failed)",
	       (unsigned long long)st.drops[GC_DROP_SEND_FAILED]);
	result(accounting_ok(&s, "after stop during TX full"), "TX full + stop: no UMEM frame leaked or used twice");
	sim_close(&s);
}

/* table() with its route in room @room (NULL: none) after the rooms @rooms. */
static struct gc_ring_table *table_of_generation(__u64 generation)
{
	struct gc_ring_table *t = table();

	if (t)
		gc_ring_table_set_generation(t, generation);
	return t;
}

static struct gc_ring_table *table_in(const char *const *rooms, int n_rooms, const char *room)
{
	struct gc_ring_table *t = table();
	int i, index;

	for (i = 0; t && i < n_rooms; i++) {
		index = gc_ring_table_add_room(t, rooms[i]);
		if (index < 0 || (room && !strcmp(room, rooms[i]) &&
				  gc_ring_table_route_room(t, SSRC_ORIGIN, index))) {
			gc_ring_table_free(t);
			return NULL;
		}
	}
	return t;
}

/* Sends @n valid packets (and one spoofed, one of an unknown SSRC: in no
 * room); returns their UDP payload bytes. */
static __u64 room_traffic(struct sim *s, int n)
{
	__u8 buf[PKT_MAX];
	__u64 bytes = 0;
	size_t len;
	int i;

	for (i = 0; i < n + 2; i++) {
		len = build(buf, i == n ? 2 : 0, i == n + 1 ? SSRC_UNKNOWN : SSRC_ORIGIN, (__u16)i, 0);
		if (i < n)
			bytes += len - (14 + 20 + 8);	/* Ethernet, IPv4, UDP headers */
		for (int k = 0; k < PORTS; k++)
			sim_claim_fill(s, k);
		sim_receive(s, i == n, buf, len);
		gc_ring_process(s->ring, NULL);
	}
	drain(s);
	return bytes;
}

/* The published counters of room @name; 0 when it is not published. */
static int room_find(struct sim *s, const char *name, struct gc_media_counters *out)
{
	char got[GC_RING_ROOM_NAME_MAX + 1];
	int i, n = gc_ring_room_media(s->ring, -1, got, out);

	for (i = 0; i < n; i++)
		if (gc_ring_room_media(s->ring, i, got, out) > i && !strcmp(got, name))
			return 1;
	return 0;
}

static void test_rooms(void)
{
	static const char *const alpha_beta[] = { "alpha", "beta" }, *const beta[] = { "beta" };
	struct gc_media_counters m, none;
	struct sim s;
	__u64 bytes;
	int found, other;

	if (sim_open_with(&s, 4 * RING_SIZE, SFU_PORT, (struct gc_ring_port_info[PORTS]){
				  { .mac = { 2, 0, 0, 0, 0, 1 }, .ipv4 = { 10, 9, 0, 1 } },
				  { .mac = { 2, 0, 0, 0, 1, 1 }, .ipv4 = { 10, 9, 1, 1 } } },
			  table_in(alpha_beta, 1, "alpha"))) {
		result(0, "rooms: open");
		return;
	}
	bytes = room_traffic(&s, 40);
	found = room_find(&s, "alpha", &m);
	result(found && m.received == 40 && m.received_bytes == bytes &&
	       m.forwarded == 3 * 40 && m.forwarded_bytes == 3 * bytes && m.echoed == 40 &&
	       m.echoed_bytes == bytes && m.dropped == 0,
	       "rooms: a route's media counted in its room (received %llu, %llu bytes of %llu; "
	       "forwarded %llu, echoed %llu, dropped %llu), the spoofed and the unknown in none",
	       (unsigned long long)m.received, (unsigned long long)m.received_bytes, (unsigned long long)bytes,
	       (unsigned long long)m.forwarded, (unsigned long long)m.echoed, (unsigned long long)m.dropped);
	/* A new table with the room: its counts continue; a room without routes is published at 0. */
	gc_ring_install(s.ring, table_in(alpha_beta, 2, "alpha"));
	bytes += room_traffic(&s, 10);
	found = room_find(&s, "alpha", &m);
	other = room_find(&s, "beta", &none);
	result(found && m.received == 50 && m.received_bytes == bytes && m.forwarded == 150 && other &&
	       none.received == 0,
	       "rooms: a table installed continues the counts of its rooms (received %llu)",
	       (unsigned long long)m.received);
	/* A table without it (the route moved to no room): forgotten. */
	gc_ring_install(s.ring, table_in(beta, 1, NULL));
	room_traffic(&s, 1);
	found = room_find(&s, "alpha", &m);
	other = room_find(&s, "beta", &none);
	result(!found && other && none.received == 0,
	       "rooms: a room absent from the table installed is forgotten, a route in no room counts in none");
}

/* The processing thread of test_handover: waits (no timeout of its own
 * that could end the wait) and adopts what it is offered until told to stop;
 * with adopt 0 it only serves, takes nothing, and stops serving after a while. */
struct handover_thread {
	struct gc_ring *ring;
	int adopt;
	int stop;
	int adopted;
};

static void *handover_main(void *arg)
{
	struct handover_thread *h = arg;

	if (!h->adopt) {
		usleep(50000);
		gc_ring_serving(h->ring, 0);
		return NULL;
	}
	/* Until it adopts an offer made after stop was set (the one that wakes
	 * it to stop): stop read before adopting, so an offer adopted before
	 * stop was set never ends the loop (checking stop after the adoption
	 * raced with the test's store and lost the last offer). */
	for (;;) {
		int stopping, n;

		if (gc_ring_wait(h->ring, 60000) < 0)
			break;
		stopping = __atomic_load_n(&h->stop, __ATOMIC_ACQUIRE);
		n = gc_ring_adopt(h->ring);
		h->adopted += n;
		if (stopping && n)
			break;
	}
	gc_ring_serving(h->ring, 0);
	return NULL;
}

/* One packet of the origin's SSRC, processed; the ring's counters after it. */
static void origin_packet(struct sim *s, struct gc_ring_stats *st)
{
	__u8 buf[PKT_MAX];
	size_t len = build(buf, 0, SSRC_ORIGIN, 1, 0);

	sim_claim_fill(s, 0);
	sim_receive(s, 0, buf, len);
	drain(s);
	gc_ring_process(s->ring, NULL);
	gc_ring_stats(s->ring, st);
}

/* A table built on another thread (the SFU's control thread) and handed to
 * the processing thread: live once gc_ring_offer() says so, the wait ended by
 * the offer (not a timeout), never a wait when nothing processes. */
static void test_handover(void)
{
	struct handover_thread h = {};
	__u64 generation_before;
	struct gc_ring_stats st;
	pthread_t thread;
	struct sim s;
	int ret;

	if (sim_open_with_table(&s, 4 * RING_SIZE, gc_ring_table_new(8, 1))) {
		result(0, "handover: open");
		return;
	}
	origin_packet(&s, &st);
	ret = gc_ring_offer(s.ring, table_of_generation(7), 10000);
	result(ret == GC_RING_PENDING && st.drops[GC_DROP_UNKNOWN_SSRC] == 1,
	       "handover: before any table an SSRC is unknown; offered while nothing serves, pending at once (%d)", ret);
	/* Replaces the pending one (freed: ASan/valgrind builds see a leak otherwise);
	 * the table installed names itself, whichever offer it was. */
	generation_before = gc_ring_installed_generation(s.ring);
	gc_ring_offer(s.ring, table_of_generation(8), 0);
	ret = gc_ring_adopt(s.ring);
	origin_packet(&s, &st);
	result(ret == 1 && gc_ring_adopt(s.ring) == 0 && st.drops[GC_DROP_UNKNOWN_SSRC] == 1 && st.forwarded == 3 &&
	       st.echoed == 1, "handover: adopted once, the next packet routed (%llu copies, %llu unknown)",
	       (unsigned long long)st.forwarded, (unsigned long long)st.drops[GC_DROP_UNKNOWN_SSRC]);
	result(generation_before == 0 && gc_ring_installed_generation(s.ring) == 8,
	       "handover: the installed table's generation is the last offer's (%llu, before %llu)",
	       (unsigned long long)gc_ring_installed_generation(s.ring), (unsigned long long)generation_before);

	/* A thread that only returns from gc_ring_wait() when woken. */
	gc_ring_serving(s.ring, 1);
	h.ring = s.ring;
	h.adopt = 1;
	if (pthread_create(&thread, NULL, handover_main, &h)) {
		result(0, "handover: pthread_create");
		sim_close(&s);
		return;
	}
	ret = gc_ring_offer(s.ring, table(), 10000);
	result(ret == GC_RING_ADOPTED, "handover: the offer wakes the waiting thread, which adopts it (%d)", ret);
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	gc_ring_offer(s.ring, table(), 10000);	/* wakes it to see stop */
	pthread_join(thread, NULL);
	result(h.adopted == 2, "handover: each offer adopted once (%d)", h.adopted);

	/* Serving, not adopting, then stopping: the waiting offer returns then. */
	gc_ring_serving(s.ring, 1);
	h = (struct handover_thread){ .ring = s.ring };
	if (pthread_create(&thread, NULL, handover_main, &h)) {
		result(0, "handover: pthread_create");
		sim_close(&s);
		return;
	}
	ret = gc_ring_offer(s.ring, table(), 60000);
	pthread_join(thread, NULL);
	result(ret == GC_RING_PENDING, "handover: an offer waiting while the thread stops serving returns (%d)", ret);
	gc_ring_serving(s.ring, 1);
	ret = gc_ring_offer(s.ring, table(), 1);
	result(ret == GC_RING_TIMED_OUT, "handover: not adopted in time (%d); the pending tables are freed at close", ret);
	sim_close(&s);
}

static void test_options(void)
{
	struct gc_ring_opts o;
	struct gc_ring *ring = NULL;
	struct gcfp_error err = {};

	gc_ring_opts_init(&o);
	o.ring_size = 1000;
	result(gc_ring_open(&o, &ring, &err) == -GCFP_ERR_INVALID && strstr(err.message, "power of two"),
	       "options: ring size not a power of two is refused (%s)", err.message);
	gc_ring_opts_init(&o);
	o.frame_count = 100;
	result(gc_ring_open(&o, &ring, &err) == -GCFP_ERR_INVALID, "options: too few frames refused (%s)", err.message);
	gc_ring_opts_init(&o);
	o.batch = 0;
	result(gc_ring_open(&o, &ring, &err) == -GCFP_ERR_INVALID, "options: batch 0 refused (%s)", err.message);
	gc_ring_opts_init(&o);
	o.busy_poll_us = GC_RING_MAX_BUSY_POLL_US + 1;
	result(gc_ring_open(&o, &ring, &err) == -GCFP_ERR_INVALID && strstr(err.message, "busy poll"),
	       "options: a busy-poll time over %u us is refused (%s)", GC_RING_MAX_BUSY_POLL_US, err.message);
	gc_ring_opts_init(&o);
	o.coalesce_us = GC_RING_MAX_COALESCE_US + 1;
	result(gc_ring_open(&o, &ring, &err) == -GCFP_ERR_INVALID && strstr(err.message, "coalescing"),
	       "options: a coalescing time over %u us is refused (%s)", GC_RING_MAX_COALESCE_US, err.message);
	gc_ring_opts_init(&o);
	result(gc_ring_open(&o, &ring, &err) == 0 &&
	       gc_ring_add_interface(ring, "gc-no-such-if", &err) == -GCFP_ERR_NO_DEVICE,
	       "options: a missing interface is named (%s)", err.message);
	gc_ring_close(ring);
}

/* ---- the corpus (bpf/tests/corpus/frames.txt, bpf/tests/corpus/README.md) ---- */

static int ring_reason(const char *name)
{
	int k;

	for (k = 0; k < GC_DROP_MAX; k++)
		if (!strcmp(gc_drop_name(k), name))
			return k;
	return -1;
}

/* Every corpus frame the ring program would redirect (ring column != none)
 * through the ring core: forwarded (one copy + the echo, valid checksums)
 * or dropped with the corpus's reason, and nothing else counted. */
static void test_corpus(void)
{
	static char line[2 * PKT_MAX + 512];
	struct gc_ring_port_info infos[PORTS] = {};
	struct gc_ring_table *t = gc_ring_table_new(8, 1);
	unsigned int port = 0, ok = 0, total = 0;
	__u8 buf[PKT_MAX];
	FILE *fp = fopen(corpus_path(), "r");
	struct sim s;
	int k;

	if (!fp || !t) {
		result(0, "corpus: cannot read %s", corpus_path());
		return;
	}
	/* Port 0 is the SFU's interface of the corpus; port 1 the subscribers'. */
	memcpy(infos[1].mac, sfu_mac[1], 6);
	memcpy(infos[1].ipv4, sfu_ip[1], 4);
	infos[1].ipv6[0] = 0xfd;
	infos[1].ipv6[15] = 0x99;
	while (fgets(line, sizeof(line), fp)) {
		char a[64];
		unsigned int ssrc, fam, oport;

		if (sscanf(line, "@port %u", &port) == 1)
			continue;
		if (sscanf(line, "@sfu_mac %hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &infos[0].mac[0], &infos[0].mac[1],
			   &infos[0].mac[2], &infos[0].mac[3], &infos[0].mac[4], &infos[0].mac[5]) == 6)
			continue;
		if (sscanf(line, "@sfu_ipv4 %63s", a) == 1) {
			inet_pton(AF_INET, a, infos[0].ipv4);
			continue;
		}
		if (sscanf(line, "@sfu_ipv6 %63s", a) == 1) {
			inet_pton(AF_INET6, a, infos[0].ipv6);
			continue;
		}
		if (sscanf(line, "@route %x %u %63s %u", &ssrc, &fam, a, &oport) == 4) {
			struct gc_subscriber sub = { .ifindex = 12, .family = fam, .port = htons(6000) };
			__u8 origin[16] = {};

			inet_pton(fam == 4 ? AF_INET : AF_INET6, a, origin);
			memcpy(sub.dst_mac, part_mac[2], 6);
			if (fam == 4)
				memcpy(sub.addr, part_ip[2], 4);
			else
				inet_pton(AF_INET6, "fd00::99:2", sub.addr);
			gc_ring_table_add(t, ssrc, fam, GC_STREAM_ASQ, origin, htons(oport), 0, &sub, 1);
		}
	}
	if (!port || sim_open_with(&s, 4 * RING_SIZE, port, infos, t)) {
		fclose(fp);
		result(0, "corpus: open the simulated ring");
		return;
	}
	s.corpus = 1;
	rewind(fp);
	while (fgets(line, sizeof(line), fp)) {
		char *field[CORPUS_FIELDS];
		struct gc_ring_stats before, after;
		size_t len;
		int reason, good;

		if (corpus_line(line, field, buf, &len) || !strcmp(field[5], "none"))
			continue;	/* "none": the ring program passes it to the stack */
		drain(&s);
		gc_ring_process(s.ring, NULL);
		gc_ring_stats(s.ring, &before);
		for (k = 0; k < PORTS; k++)
			sim_claim_fill(&s, k);
		if (sim_receive(&s, 0, buf, len)) {
			result(0, "corpus (ring): %s: no receive buffer", field[0]);
			continue;
		}
		drain(&s);
		gc_ring_process(s.ring, NULL);
		gc_ring_stats(s.ring, &after);
		total++;
		if (!strcmp(field[5], "forward")) {
			good = after.forwarded - before.forwarded == 1 && after.echoed - before.echoed == 1;
			for (k = 0; k < GC_DROP_MAX; k++)
				good &= after.drops[k] == before.drops[k];
		} else {
			reason = ring_reason(field[5]);
			good = reason >= 0 && after.forwarded == before.forwarded && after.echoed == before.echoed;
			for (k = 0; k < GC_DROP_MAX; k++)
				good &= after.drops[k] - before.drops[k] == (__u64)(k == reason);
		}
		if (good) {
			ok++;
		} else {
			printf("# corpus (ring): %s: want %s; forwarded +%llu echoed +%llu", field[0], field[5],
			       (unsigned long long)(after.forwarded - before.forwarded),
			       (unsigned long long)(after.echoed - before.echoed));
			for (k = 0; k < GC_DROP_MAX; k++)
				if (after.drops[k] != before.drops[k])
					printf(" %s +%llu", gc_drop_name(k),
					       (unsigned long long)(after.drops[k] - before.drops[k]));
			printf("\n");
		}
	}
	fclose(fp);
	result(total > 0 && ok == total, "corpus: %u of %u frames handled by the ring core as labelled", ok, total);
	result(s.bad_csum == 0 && accounting_ok(&s, "after the corpus"),
	       "corpus: every copy and echo has valid checksums, no UMEM frame leaked (%llu bad)",
	       (unsigned long long)s.bad_csum);
	sim_close(&s);
}

/*
 * VLANs (issue 13): port 0 serves VLANs 10 and 20 (an address on each) and
 * the untagged LAN; the origin registered through VLAN 10. Its media, tagged
 * 10, goes out as copies to a subscriber on VLAN 10 (port 0), one untagged
 * and one on VLAN 20 (port 1), each with its own tag (or none), from the
 * address the origin sent to, and back to it tagged 10 (the echo); the
 * origin's address from VLAN 20 is spoofed, VLAN 30 (no device) is vlan.
 */
static void test_vlan(void)
{
	static const __u8 v10_sfu[4] = { 10, 10, 0, 254 }, v20_sfu[4] = { 10, 20, 0, 254 };
	static const __u8 v10_origin[4] = { 10, 10, 0, 2 };
	static const __u16 want_vlan[3] = { 10, 0, 20 };
	struct gc_local_addr local[5] = {
		{ .family = GC_FAMILY_VLAN, .vlan_id = 10 }, { .family = GC_FAMILY_VLAN, .vlan_id = 20 },
		{ .family = GC_FAMILY_IPV4, .vlan_id = 10 }, { .family = GC_FAMILY_IPV4, .vlan_id = 20 },
		{ .family = GC_FAMILY_IPV4 },
	};
	struct gc_ring_table *t = gc_ring_table_new(4, 1);
	struct gc_ring_port_info infos[PORTS] = {};
	struct gc_subscriber subs[3] = {};
	struct gc_ring_stats before, after;
	struct pkt_spec sp = { .family = 4, .ttl = 64, .sport = part_port[0], .dport = SFU_PORT };
	__u8 payload[64], buf[PKT_MAX], origin[16] = {};
	struct sim s;
	int k, round, ok = 1, copies = 0;
	size_t len;

	memcpy(local[2].addr, v10_sfu, 4);
	memcpy(local[3].addr, v20_sfu, 4);
	memcpy(local[4].addr, sfu_ip[0], 4);
	for (k = 0; k < 3; k++) {
		subs[k].ifindex = k == 0 ? 11 : 12;
		subs[k].family = GC_FAMILY_IPV4;
		subs[k].port = htons(part_port[k + 1]);
		subs[k].vlan_id = want_vlan[k];
		memcpy(subs[k].dst_mac, part_mac[k + 1], 6);
		memcpy(subs[k].addr, part_ip[k + 1], 4);
	}
	memcpy(origin, v10_origin, 4);
	for (k = 0; k < PORTS; k++) {
		memcpy(infos[k].mac, sfu_mac[k], 6);
		memcpy(infos[k].ipv4, sfu_ip[k], 4);
	}
	if (!t || gc_ring_table_add(t, SSRC_ORIGIN, GC_FAMILY_IPV4, GC_STREAM_ASQ, origin,
				    htons(part_port[0]), 10, subs, 3) ||
	    sim_open_with(&s, 4 * RING_SIZE, SFU_PORT, infos, t) ||
	    gc_ring_sim_set_local(s.ring, 0, local, 5)) {
		result(0, "vlan: open the simulated ring");
		return;
	}
	s.corpus = 1;	/* checksums checked by check_frame, addresses below */
	s.keep = 1;
	memcpy(sp.dmac, sfu_mac[0], 6);
	memcpy(sp.smac, part_mac[0], 6);
	memcpy(sp.saddr, v10_origin, 4);
	sp.payload = payload;
	for (round = 0; round < 3; round++) {
		static const __u16 tag[3] = { 10, 20, 30 };
		static const int reason[3] = { -1, GC_DROP_SPOOFED, GC_DROP_VLAN };

		sp.vlan_tci = tag[round];
		memcpy(sp.daddr, round == 1 ? v20_sfu : v10_sfu, 4);
		sp.payload_len = rtp_build(payload, SSRC_ORIGIN, round, 96, 40);
		len = pkt_build(&sp, buf, NULL);
		drain(&s);
		gc_ring_stats(s.ring, &before);
		s.n_kept = 0;
		if (sim_receive(&s, 0, buf, len)) {
			ok = 0;
			break;
		}
		drain(&s);
		gc_ring_process(s.ring, NULL);
		gc_ring_stats(s.ring, &after);
		if (reason[round] >= 0) {
			if (s.n_kept || after.forwarded != before.forwarded ||
			    after.drops[reason[round]] != before.drops[reason[round]] + 1) {
				printf("# vlan %u: %d frames out, %s +%llu\n", tag[round], s.n_kept,
				       gc_drop_name(reason[round]),
				       (unsigned long long)(after.drops[reason[round]] - before.drops[reason[round]]));
				ok = 0;
			}
			continue;
		}
		/* Each copy (told by its destination MAC) and the echo, in the
		 * order the ports were kicked. */
		for (k = 0; k < s.n_kept; k++) {
			const __u8 *f = s.kept[k].b;
			int tagged = f[12] == 0x81 && f[13] == 0x00, who;
			__u16 vid = tagged ? (f[14] << 8 | f[15]) & 0xfff : 0;
			const __u8 *ip = f + (tagged ? 18 : 14);

			for (who = 0; who < 4 && memcmp(f, part_mac[who], 6); who++)
				;
			if (who >= 1 && who <= 3) {
				ok &= s.kept[k].port == (who == 1 ? 0 : 1) && vid == want_vlan[who - 1] &&
				      !memcmp(ip + 12, v10_sfu, 4) && !memcmp(ip + 16, part_ip[who], 4) &&
				      s.kept[k].len == len - 4 + (tagged ? 4 : 0);
				copies++;
			} else {
				ok &= who == 0 && s.kept[k].port == 0 && vid == 10 &&
				      !memcmp(ip + 12, v10_sfu, 4) && !memcmp(ip + 16, v10_origin, 4);
			}
			if (!ok) {
				printf("# vlan 10: frame %d out of port %d to participant %d: vlan %u, %u bytes\n",
				       k, s.kept[k].port, who, vid, s.kept[k].len);
				break;
			}
		}
		ok &= s.n_kept == 4 && after.forwarded == before.forwarded + 3 &&
		      after.echoed == before.echoed + 1;
	}
	result(ok && copies == 3 && s.bad_csum == 0 && accounting_ok(&s, "after the vlan frames"),
	       "vlan: copies with their subscriber's tag (10, none, 20) from the address sent to, the echo "
	       "tagged 10; the origin from vlan 20 spoofed, vlan 30 dropped as vlan");
	sim_close(&s);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* One origin frame received and processed in one pass (no drain before it). */
static void one_frame_pass(struct sim *s)
{
	__u8 buf[PKT_MAX];
	size_t len = build(buf, 0, SSRC_ORIGIN, 1, 0);

	sim_claim_fill(s, 0);
	sim_receive(s, 0, buf, len);
	gc_ring_process(s->ring, NULL);
	sim_claim_fill(s, 0);
}

/* Wake-up coalescing (coalesce_us): a wait after a short pass sleeps first
 * when frames have been coming more often than the coalescing time, not when
 * they come less often, not after an idle pass, not when off. */
static void test_coalesce(void)
{
	struct timespec start, pause = { .tv_nsec = 25000000 };
	struct gc_ring_stats st;
	struct sim s;
	double slept;
	int i;

	next_coalesce_us = 20000;
	if (sim_open(&s, 4 * RING_SIZE)) {
		result(0, "coalesce: open");
		return;
	}
	for (i = 0; i < 3; i++) {	/* a frame every 25 ms: sparser than 20 ms */
		one_frame_pass(&s);
		gc_ring_wait(s.ring, 0);
		nanosleep(&pause, NULL);
	}
	one_frame_pass(&s);
	gc_ring_stats(s.ring, &st);
	result(st.forwarded == 12 && st.coalesce_sleeps == 0 && st.waits == 3,
	       "coalesce: frames 25 ms apart (20 ms asked): no sleep, it would only add a wake-up "
	       "(%llu sleeps in %llu waits)", (unsigned long long)st.coalesce_sleeps, (unsigned long long)st.waits);
	for (i = 0; i < 40; i++)	/* back to back */
		one_frame_pass(&s);
	clock_gettime(CLOCK_MONOTONIC, &start);
	gc_ring_wait(s.ring, 0);
	slept = seconds_since(&start);
	gc_ring_process(s.ring, NULL);	/* finds nothing */
	gc_ring_wait(s.ring, 0);	/* after an idle pass: no sleep */
	one_frame_pass(&s);		/* publishes the counters */
	gc_ring_stats(s.ring, &st);
	result(st.coalesce_sleeps == 1 && st.waits == 5 && slept >= 0.02,
	       "coalesce: frames back to back: the wait after a one-frame pass slept %.1f ms (20 ms asked), the "
	       "one after an idle pass did not (%llu sleeps in %llu waits)", slept * 1000,
	       (unsigned long long)st.coalesce_sleeps, (unsigned long long)st.waits);
	sim_close(&s);

	if (sim_open(&s, 4 * RING_SIZE)) {
		result(0, "coalesce: open");
		return;
	}
	for (i = 0; i < 40; i++)
		one_frame_pass(&s);
	gc_ring_wait(s.ring, 0);
	one_frame_pass(&s);
	gc_ring_stats(s.ring, &st);
	result(st.coalesce_sleeps == 0 && st.waits == 1, "coalesce: off by default (%llu sleeps, %llu waits)",
	       (unsigned long long)st.coalesce_sleeps, (unsigned long long)st.waits);
	sim_close(&s);
}

/* ---- busy polling on a real AF_XDP socket (root: a veth in a private netns) ---- */

struct busy_result {
	int opened, index, busy_errno, prefer, tx_need_wakeup, zerocopy;
	__u32 busy_poll_us, budget, sock_busy_poll, busy_polls;
	char refused[24], message[600];
};

/* setsockopt(SOL_SOCKET, SO_PREFER_BUSY_POLL) fails with ENOPROTOOPT, as on a
 * kernel before 5.11: the fallback's test. */
static int refuse_prefer_busy_poll(void)
{
#if defined(__x86_64__)
	const __u32 arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const __u32 arch = AUDIT_ARCH_AARCH64;
#else
	const __u32 arch = 0;
#endif
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 69 /* SO_PREFER_BUSY_POLL */, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOPROTOOPT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (!arch || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* In a child in a fresh network namespace (gone with it, veth included): a
 * copy-mode ring on a veth with busy polling asked for. */
static void busy_child(struct busy_result *r, int refuse)
{
	struct gc_ring_port_info info;
	struct gc_ring_stats st;
	struct gc_ring_opts o;
	struct gc_ring *ring = NULL;
	struct gcfp_error err = {};
	int value = -1;
	socklen_t len = sizeof(value);

	if (unshare(CLONE_NEWNET) ||
	    system("ip link add gcbp0 type veth peer name gcbp1 && ip link set gcbp0 up && "
		   "ip link set gcbp1 up && ip addr add 10.9.9.1/24 dev gcbp0") != 0) {
		snprintf(r->message, sizeof(r->message), "netns/veth setup failed (%s)", strerror(errno));
		_exit(1);
	}
	if (refuse && refuse_prefer_busy_poll()) {
		snprintf(r->message, sizeof(r->message), "seccomp filter: %s", strerror(errno));
		_exit(1);
	}
	gc_ring_opts_init(&o);
	o.ring_size = 256;
	o.batch = 48;
	o.mode = GC_RING_MODE_COPY;
	o.busy_poll_us = 50;
	if (gc_ring_open(&o, &ring, &err)) {
		snprintf(r->message, sizeof(r->message), "%s", err.message);
		_exit(1);
	}
	r->index = gc_ring_add_interface(ring, "gcbp0", &err);
	if (r->index < 0) {
		snprintf(r->message, sizeof(r->message), "%s", err.message);
		gc_ring_close(ring);
		_exit(1);
	}
	r->opened = 1;
	gc_ring_port_info(ring, r->index, &info);
	r->busy_errno = info.busy_poll_errno;
	r->busy_poll_us = info.busy_poll_us;
	r->budget = info.busy_poll_budget;
	r->tx_need_wakeup = info.tx_need_wakeup;
	r->zerocopy = info.zerocopy;
	memcpy(r->refused, info.busy_poll_refused, sizeof(r->refused));
	if (!getsockopt(info.fd, SOL_SOCKET, SO_BUSY_POLL, &value, &len))
		r->sock_busy_poll = value;
	len = sizeof(value);
	value = -1;
	if (!getsockopt(info.fd, SOL_SOCKET, 69 /* SO_PREFER_BUSY_POLL */, &value, &len))
		r->prefer = value;
	gc_ring_wait(ring, 0);
	gc_ring_process(ring, NULL);
	gc_ring_stats(ring, &st);
	r->busy_polls = st.busy_polls;
	gc_ring_close(ring);
	_exit(0);
}

static int run_busy_child(struct busy_result *r, int refuse)
{
	int status = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	pid = fork();
	if (pid == 0)
		busy_child(r, refuse);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (r->message[0])
		printf("# busy polling child: %s\n", r->message);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_busy_poll(void)
{
	struct busy_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (r == MAP_FAILED) {
		result(0, "busy poll: mmap");
		result(0, "busy poll: mmap");
		return;
	}
	ok = !run_busy_child(r, 0);
	result(ok && r->busy_errno == 0 && r->busy_poll_us == 50 && r->sock_busy_poll == 50 && r->budget == 48 &&
	       r->prefer == 1 && r->busy_polls >= 1,
	       "busy poll: SO_BUSY_POLL %u us and SO_PREFER_BUSY_POLL %d on the socket, SO_BUSY_POLL_BUDGET %u (the batch) taken; "
	       "the wait polled the NAPI (%u)", r->sock_busy_poll, r->prefer, r->budget, r->busy_polls);
	result(ok && !r->zerocopy && r->tx_need_wakeup == 1,
	       "busy poll: copy mode on veth, its TX ring asks for every kick (need_wakeup %u)", r->tx_need_wakeup);
	ok = !run_busy_child(r, 1);
	result(ok && r->opened && r->busy_errno == ENOPROTOOPT && !strcmp(r->refused, "SO_PREFER_BUSY_POLL") &&
	       r->sock_busy_poll == 0 && r->busy_poll_us == 0 && r->busy_polls == 0,
	       "busy poll: refused by the kernel (%s: %s), the port runs without it (SO_BUSY_POLL %u, %u polls)",
	       r->refused[0] ? r->refused : "-", strerror(r->busy_errno), r->sock_busy_poll, r->busy_polls);
	munmap(r, sizeof(*r));
}

/* ---- TX kicks on real copy-mode sockets (root: two veths in a private netns) ----
 * The ring on gck0 and gcq0; packet sockets on their peers gck1 and gcq1
 * inject the origin's frame and count what the ring sends. After
 * gc_ring_process() returns, every copy must have left: a TX ring left
 * unkicked shows as missing copies. The counters say how: one poll() for
 * several rings (tx_polls), a sendto() each for a ring with more than one
 * transmit call sends (32) or a ring alone. */

struct kick_result {
	int step;
	__u32 got[3][2];			/* per scenario: copies seen at gck1, gcq1 */
	__u64 kicks[3], polls[3], forwarded[3];
	int woke;				/* first scenario: what the wait returned */
	char message[600];
};

static int kick_packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));

	sll.sll_ifindex = if_nametoindex(ifname);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Frames from the SFU's media port that arrived at @fd: what is queued now
 * (veth delivers in the sender's system call), plus anything within 200 ms. */
static __u32 kick_count(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	__u8 buf[2048];
	__u32 n = 0;

	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t len = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (len < 0) {
			if (errno == EAGAIN && poll(&pfd, 1, 200) > 0)
				continue;
			return n;
		}
		if (from.sll_pkttype == PACKET_OUTGOING || len < 14 + 20 + 8 || buf[12] != 0x08 || buf[13] != 0 ||
		    buf[14 + 9] != 17)
			continue;
		if ((buf[14 + 20] << 8 | buf[14 + 21]) == SFU_PORT)
			n++;
	}
}

struct kick_inject {
	int fd;
	const __u8 *frame;
	size_t len;
	ssize_t sent;
};

/* The origin's frame 20 ms from now: the ring is asleep in gc_ring_wait() by then. */
static void *kick_inject_later(void *arg)
{
	struct kick_inject *in = arg;
	struct timespec ts = { .tv_nsec = 20000000 };

	nanosleep(&ts, NULL);
	in->sent = send(in->fd, in->frame, in->len, 0);
	return NULL;
}

static void kick_child(struct kick_result *r)
{
	static const int subs_k[3] = { 3, 40, 3 }, subs_q[3] = { 2, 2, 0 };
	struct gc_ring_opts o;
	struct gc_ring *ring = NULL;
	struct gcfp_error err = {};
	__u8 mac_k0[6], mac_k1[6], mac_q0[6], mac_q1[6];
	__u32 if_k0, if_q0;
	int fd_k, fd_q, sc;

	if (unshare(CLONE_NEWNET) ||
	    system("ip link add gck0 type veth peer name gck1 && ip link add gcq0 type veth peer name gcq1 && "
		   "ip link set gck0 up && ip link set gck1 up && ip link set gcq0 up && ip link set gcq1 up && "
		   "ip addr add 10.9.7.1/24 dev gck0 && ip addr add 10.9.6.1/24 dev gcq0") != 0) {
		snprintf(r->message, sizeof(r->message), "netns/veth setup failed (%s)", strerror(errno));
		_exit(1);
	}
	if (if_mac("gck0", mac_k0) || if_mac("gck1", mac_k1) || if_mac("gcq0", mac_q0) ||
	    if_mac("gcq1", mac_q1)) {
		snprintf(r->message, sizeof(r->message), "reading the veths' MACs failed");
		_exit(1);
	}
	if_k0 = if_nametoindex("gck0");
	if_q0 = if_nametoindex("gcq0");
	fd_k = kick_packet_socket("gck1");
	fd_q = kick_packet_socket("gcq1");
	if (fd_k < 0 || fd_q < 0) {
		snprintf(r->message, sizeof(r->message), "packet sockets: %s", strerror(errno));
		_exit(1);
	}
	gc_ring_opts_init(&o);
	o.ring_size = 256;
	o.mode = GC_RING_MODE_COPY;
	if (gc_ring_open(&o, &ring, &err) || gc_ring_add_interface(ring, "gck0", &err) != 0 ||
	    gc_ring_add_interface(ring, "gcq0", &err) != 1) {
		snprintf(r->message, sizeof(r->message), "%s", err.message);
		_exit(1);
	}
	for (sc = 0; sc < 3; sc++) {
		struct gc_subscriber subs[64] = {};
		struct gc_ring_table *t = gc_ring_table_new(8, 1);
		struct gc_ring_stats before, after;
		struct pkt_spec sp = { .family = 4, .ttl = 64, .sport = 5000, .dport = SFU_PORT };
		struct pkt_layout lay;
		__u8 origin[16] = { 10, 9, 7, 2 }, payload[200], frame[PKT_MAX];
		size_t len;
		int i, n = 0;

		for (i = 0; i < subs_k[sc] + subs_q[sc]; i++, n++) {
			int q = i >= subs_k[sc];

			subs[n].ifindex = q ? if_q0 : if_k0;
			subs[n].family = GC_FAMILY_IPV4;
			subs[n].port = htons(6000 + i);
			memcpy(subs[n].dst_mac, q ? mac_q1 : mac_k1, 6);
			memcpy(subs[n].addr, (__u8[4]){ 10, 9, q ? 6 : 7, 2 }, 4);
		}
		if (!t || gc_ring_table_add(t, SSRC_ORIGIN, GC_FAMILY_IPV4, GC_STREAM_ASQ, origin, htons(5000), 0, subs, n)) {
			snprintf(r->message, sizeof(r->message), "table %d", sc);
			_exit(1);
		}
		gc_ring_install(ring, t);
		memcpy(sp.dmac, mac_k0, 6);
		memcpy(sp.smac, mac_k1, 6);
		memcpy(sp.saddr, origin, 4);
		memcpy(sp.daddr, (__u8[4]){ 10, 9, 7, 1 }, 4);
		sp.payload = payload;
		sp.payload_len = rtp_build(payload, SSRC_ORIGIN, 100 + sc, 96, 120);
		len = pkt_build(&sp, frame, &lay);
		gc_ring_stats(ring, &before);
		if (sc == 0) {
			/* Sent while the ring sleeps: the socket's readiness must end
			 * the wait (1), long before its 5 s timeout (0). */
			struct kick_inject in = { .fd = fd_k, .frame = frame, .len = len };
			pthread_t th;

			if (pthread_create(&th, NULL, kick_inject_later, &in)) {
				snprintf(r->message, sizeof(r->message), "pthread_create");
				_exit(1);
			}
			r->woke = gc_ring_wait(ring, 5000);
			pthread_join(th, NULL);
			if (in.sent != (ssize_t)len) {
				snprintf(r->message, sizeof(r->message), "inject: %s", strerror(errno));
				_exit(1);
			}
		} else if (send(fd_k, frame, len, 0) != (ssize_t)len) {
			snprintf(r->message, sizeof(r->message), "inject: %s", strerror(errno));
			_exit(1);
		}
		for (i = 0; i < 20 && gc_ring_wait(ring, 100) <= 0; i++)
			;
		gc_ring_process(ring, NULL);
		gc_ring_stats(ring, &after);
		r->got[sc][0] = kick_count(fd_k);
		r->got[sc][1] = kick_count(fd_q);
		r->kicks[sc] = after.kicks - before.kicks;
		r->polls[sc] = after.tx_polls - before.tx_polls;
		r->forwarded[sc] = after.forwarded + after.echoed - before.forwarded - before.echoed;
		r->step = sc + 1;
	}
	gc_ring_close(ring);
	_exit(0);
}

static void test_kicks(void)
{
	struct kick_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status = 0, ok;
	pid_t pid;

	if (r == MAP_FAILED) {
		for (int i = 0; i < 4; i++)
			result(0, "kicks: mmap");
		return;
	}
	memset(r, 0, sizeof(*r));
	pid = fork();
	if (pid == 0)
		kick_child(r);
	ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (r->message[0])
		printf("# kicks child: %s\n", r->message);
	result(ok && r->woke == 1,
	       "kicks: a ring asleep in gc_ring_wait() is woken by a frame to its socket (wait returned %d)", r->woke);
	result(ok && r->step == 3 && r->forwarded[0] == 6 && r->got[0][0] == 4 && r->got[0][1] == 2 &&
	       r->polls[0] == 1 && r->kicks[0] == 0,
	       "kicks: 3 + echo and 2 copies on two copy-mode veths all sent by the pass (%u, %u seen), "
	       "by one poll() for both rings (%llu polls, %llu sendto)", r->got[0][0], r->got[0][1],
	       (unsigned long long)r->polls[0], (unsigned long long)r->kicks[0]);
	result(ok && r->step == 3 && r->forwarded[1] == 43 && r->got[1][0] == 41 && r->got[1][1] == 2 &&
	       r->polls[1] == 0 && r->kicks[1] >= 2,
	       "kicks: 40 + echo copies on one ring (more than a call sends) and 2 on the other all sent (%u, %u seen), "
	       "a sendto() each (%llu sendto, %llu polls)", r->got[1][0], r->got[1][1],
	       (unsigned long long)r->kicks[1], (unsigned long long)r->polls[1]);
	result(ok && r->step == 3 && r->forwarded[2] == 4 && r->got[2][0] == 4 && r->got[2][1] == 0 &&
	       r->polls[2] == 0 && r->kicks[2] == 1,
	       "kicks: 3 + echo copies on one ring sent (%u seen, %u on the other), one sendto() and no kick "
	       "for the ring without frames (%llu sendto, %llu polls)", r->got[2][0], r->got[2][1],
	       (unsigned long long)r->kicks[2], (unsigned long long)r->polls[2]);
	munmap(r, sizeof(*r));
}

int main(void)
{
	printf("TAP version 13\n1..40\n");
	test_options();
	test_million();
	test_tx_full();
	test_corpus();
	test_vlan();
	test_rooms();
	test_handover();
	test_coalesce();
	test_busy_poll();
	test_kicks();
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
