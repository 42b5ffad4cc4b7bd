// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * udp-probe - RTP sender and verifying receiver for the end-to-end tests.
 *
 *   udp-probe send --src ADDR --sport P --dst ADDR --dport P --ssrc N --count C
 *                  [--size BYTES] [--interval-us U] [--echo-timeout-ms T] [--expect-echo E]
 *       Sends C RTP packets (seq 0..C-1, media bytes derived from ssrc/seq);
 *       with --expect-echo, then checks that exactly E echoes came back from
 *       dst:dport with byte-exact payloads.
 *
 *   udp-probe recv --dev IFACE --port P --ssrc N --from ADDR --from-port P
 *                  --expect C [--size BYTES] [--timeout-ms T] [--first-timeout-ms F]
 *                  [--ready FILE]
 *       Receives on UDP port P (a socket, so the stack delivered it) and
 *       captures on IFACE (AF_PACKET) to verify every frame's IP and UDP
 *       checksums in software. Succeeds iff exactly C distinct datagrams
 *       arrived, all from ADDR:P with byte-exact payloads, and every captured
 *       frame to P had valid checksums. It waits up to F ms (default T) for
 *       the first datagram, then until T ms pass without a valid one.
 *
 * Exit status 0 on success, 1 on a failed expectation (the reason on
 * stderr), 2 on usage errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pkt.h"

#define MAX_COUNT	100000

struct opts {
	const char *src, *dst, *dev, *from, *ready;
	int sport, dport, port, from_port;
	uint32_t ssrc;
	int count, size, interval_us, timeout_ms, first_timeout_ms, expect, expect_echo;
};

static int parse_sockaddr(const char *a, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	return -1;
}

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A datagram is valid iff it is exactly the RTP packet of its seq. */
static int check_payload(const uint8_t *p, ssize_t n, const struct opts *o, int *seq)
{
	uint8_t want[1600];
	size_t wlen;
	int s;

	if (n < 12)
		return -1;
	s = p[2] << 8 | p[3];
	if (s >= o->count)
		return -1;
	wlen = rtp_build(want, o->ssrc, s, 96, o->size);
	if ((size_t)n != wlen || memcmp(p, want, wlen))
		return -1;
	*seq = s;
	return 0;
}

static int do_send(const struct opts *o)
{
	struct sockaddr_storage src, dst, from;
	socklen_t slen, dlen, flen;
	static uint8_t seen[MAX_COUNT];
	uint8_t buf[1600];
	int fd, fam, i, echoes = 0, bad = 0, one = 1, rcvbuf = 16 << 20;
	long long deadline;

	fam = parse_sockaddr(o->src, o->sport, &src, &slen);
	if (fam < 0 || parse_sockaddr(o->dst, o->dport, &dst, &dlen) != fam) {
		fprintf(stderr, "udp-probe: --src/--dst must be addresses of one family\n");
		return 2;
	}
	fd = socket(fam, SOCK_DGRAM, 0);
	/* Echoes queue up while we send: room for all of them. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(fd, (struct sockaddr *)&src, slen)) {
		perror("udp-probe: bind");
		return 1;
	}
	for (i = 0; i < o->count; i++) {
		size_t len = rtp_build(buf, o->ssrc, i, 96, o->size);

		if (sendto(fd, buf, len, 0, (struct sockaddr *)&dst, dlen) != (ssize_t)len) {
			perror("udp-probe: sendto");
			return 1;
		}
		if (o->interval_us)
			usleep(o->interval_us);
	}
	if (o->expect_echo < 0)
		return 0;
	deadline = now_ms() + o->timeout_ms;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int seq;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			continue;
		if (!same_peer(&from, &dst) || check_payload(buf, n, o, &seq) || seen[seq]) {
			bad++;
			continue;
		}
		seen[seq] = 1;
		echoes++;
	}
	printf("sent %d, echoes %d valid, %d invalid\n", o->count, echoes, bad);
	if (echoes != o->expect_echo || bad) {
		fprintf(stderr, "udp-probe: expected %d valid echoes and no invalid ones\n",
			o->expect_echo);
		return 1;
	}
	return 0;
}

static int open_capture(const char *dev)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd, one = 1, sz = 8 << 20;

	sll.sll_ifindex = if_nametoindex(dev);
	if (!sll.sll_ifindex)
		return -1;
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		return -1;
	return fd;
}

/* A captured frame: 1 if it is an incoming UDP datagram to @port with valid
 * checksums, -1 if one with invalid ones, 0 if something else. */
static int check_frame(int fd, int port, int *partial)
{
	char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	uint8_t f[2048];
	struct sockaddr_ll sll;
	struct iovec iov = { f, sizeof(f) };
	struct msghdr msg = { .msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = &iov,
			      .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	const char *why;
	size_t l3, l4;
	ssize_t n;
	uint16_t proto;

	n = recvmsg(fd, &msg, 0);
	if (n < 14 || sll.sll_pkttype == PACKET_OUTGOING)
		return 0;
	proto = f[12] << 8 | f[13];
	l3 = 14;
	if (proto == 0x0800 && n >= 34)
		l4 = l3 + (f[l3] & 0xf) * 4;
	else if (proto == 0x86dd && n >= 54 && f[l3 + 6] == 17)
		l4 = l3 + 40;
	else
		return 0;
	if (proto == 0x0800 && f[l3 + 9] != 17)
		return 0;
	if ((size_t)n < l4 + 8 || (f[l4 + 2] << 8 | f[l4 + 3]) != port)
		return 0;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		struct tpacket_auxdata *aux = (void *)CMSG_DATA(c);

		/* CHECKSUM_PARTIAL: the stack vouches for it, the field holds
		 * only the pseudo-header sum; cannot be checked in software. */
		if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
		    (aux->tp_status & TP_STATUS_CSUMNOTREADY)) {
			(*partial)++;
			return 1;
		}
	}
	if (pkt_check_csums(f, n, &why)) {
		fprintf(stderr, "udp-probe: frame to port %d: %s\n", port, why);
		return -1;
	}
	return 1;
}

static int do_recv(const struct opts *o)
{
	struct sockaddr_storage from, want;
	socklen_t flen, wlen;
	static uint8_t seen[MAX_COUNT];
	uint8_t buf[1600];
	int fd, cap, fam, got = 0, bad = 0, frames_ok = 0, frames_bad = 0, partial = 0;
	long long deadline;

	fam = parse_sockaddr(o->from, o->from_port, &want, &wlen);
	if (fam < 0) {
		fprintf(stderr, "udp-probe: --from must be an address\n");
		return 2;
	}
	cap = open_capture(o->dev);
	if (cap < 0) {
		fprintf(stderr, "udp-probe: capture on %s: %s\n", o->dev, strerror(errno));
		return 1;
	}
	fd = socket(fam, SOCK_DGRAM, 0);
	{
		struct sockaddr_storage any;
		int sz = 16 << 20;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
		socklen_t alen;

		parse_sockaddr(fam == AF_INET ? "0.0.0.0" : "::", o->port, &any, &alen);
		if (fd < 0 || bind(fd, (struct sockaddr *)&any, alen)) {
			perror("udp-probe: bind");
			return 1;
		}
	}
	if (o->ready) {
		int rf = open(o->ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (rf >= 0)
			close(rf);
	}
	deadline = now_ms() + (o->first_timeout_ms ? o->first_timeout_ms : o->timeout_ms);
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = cap, .events = POLLIN } };
		long long left = deadline - now_ms();

		if (left <= 0 || poll(p, 2, left) <= 0)
			break;
		if (p[1].revents & POLLIN) {
			int r = check_frame(cap, o->port, &partial);

			frames_ok += r == 1;
			frames_bad += r == -1;
		}
		if (p[0].revents & POLLIN) {
			ssize_t n;
			int seq;

			flen = sizeof(from);
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
			if (n < 0)
				continue;
			if (!same_peer(&from, &want) || check_payload(buf, n, o, &seq) || seen[seq]) {
				bad++;
				continue;
			}
			seen[seq] = 1;
			got++;
			deadline = now_ms() + o->timeout_ms;
		}
	}
	/* Frames still queued on the capture socket. */
	for (;;) {
		struct pollfd p = { .fd = cap, .events = POLLIN };
		int r;

		if (poll(&p, 1, 0) <= 0)
			break;
		r = check_frame(cap, o->port, &partial);
		frames_ok += r == 1;
		frames_bad += r == -1;
	}
	printf("%s: %d valid datagrams, %d invalid; %d frames with valid checksums "
	       "(%d checksum-partial), %d with invalid ones\n",
	       o->dev, got, bad, frames_ok, partial, frames_bad);
	if (got != o->expect || bad || frames_bad || frames_ok != o->expect) {
		fprintf(stderr, "udp-probe: %s: expected exactly %d valid datagrams with valid "
			"checksums\n", o->dev, o->expect);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "src", 1, NULL, 1 }, { "sport", 1, NULL, 2 }, { "dst", 1, NULL, 3 },
		{ "dport", 1, NULL, 4 }, { "ssrc", 1, NULL, 5 }, { "count", 1, NULL, 6 },
		{ "size", 1, NULL, 7 }, { "interval-us", 1, NULL, 8 }, { "echo-timeout-ms", 1, NULL, 9 },
		{ "expect-echo", 1, NULL, 10 }, { "dev", 1, NULL, 11 }, { "port", 1, NULL, 12 },
		{ "from", 1, NULL, 13 }, { "from-port", 1, NULL, 14 }, { "expect", 1, NULL, 15 },
		{ "timeout-ms", 1, NULL, 16 }, { "ready", 1, NULL, 17 },
		{ "first-timeout-ms", 1, NULL, 18 }, {}
	};
	struct opts o = { .size = 160, .timeout_ms = 2000, .expect = -1, .expect_echo = -1 };
	int c;

	if (argc < 2)
		goto usage;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 1: o.src = optarg; break;
		case 2: o.sport = atoi(optarg); break;
		case 3: o.dst = optarg; break;
		case 4: o.dport = atoi(optarg); break;
		case 5: o.ssrc = strtoul(optarg, NULL, 0); break;
		case 6: o.count = atoi(optarg); break;
		case 7: o.size = atoi(optarg); break;
		case 8: o.interval_us = atoi(optarg); break;
		case 9: case 16: o.timeout_ms = atoi(optarg); break;
		case 10: o.expect_echo = atoi(optarg); break;
		case 11: o.dev = optarg; break;
		case 12: o.port = atoi(optarg); break;
		case 13: o.from = optarg; break;
		case 14: o.from_port = atoi(optarg); break;
		case 15: o.expect = atoi(optarg); break;
		case 17: o.ready = optarg; break;
		case 18: o.first_timeout_ms = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (o.size < 0 || o.size > 1400 || o.count < 0 || o.count > MAX_COUNT)
		goto usage;
	if (!strcmp(argv[1], "send") && o.src && o.dst && o.sport && o.dport)
		return do_send(&o);
	if (!strcmp(argv[1], "recv") && o.dev && o.port && o.from && o.from_port && o.expect >= 0) {
		if (!o.count)
			o.count = MAX_COUNT;
		return do_recv(&o);
	}
usage:
	fprintf(stderr, "usage: udp-probe send --src A --sport P --dst A --dport P --ssrc N --count C "
		"[--size B] [--interval-us U] [--expect-echo E] [--echo-timeout-ms T]\n"
		"       udp-probe recv --dev IF --port P --ssrc N --from A --from-port P --expect C "
		"[--count C] [--size B] [--timeout-ms T] [--first-timeout-ms F] [--ready FILE]\n");
	return 2;
}
