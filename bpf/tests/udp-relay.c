// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * udp-relay - the benchmark's user-space side.
 *
 *   udp-relay gen --src A --sport P --dst A --dport P --ssrc N --rate PPS
 *                 --seconds S [--size B]
 *       A paced RTP source: sendmmsg() batches every 1 ms (clock_nanosleep on
 *       an absolute deadline), so the offered load is the same for every
 *       replication mechanism.
 *
 *   udp-relay relay --port P --ssrc N --origin A --origin-port P --dsts FILE [--no-echo]
 *       The user-space SFU baseline (the paper's socket SFU with batching):
 *       recvmmsg() up to 64 datagrams, check RTP v2 + SSRC + origin (as the
 *       fast path does), then one sendmmsg() per datagram with a copy for
 *       every destination in FILE ("ADDR PORT" lines) and the echo. Runs
 *       until SIGTERM/SIGINT and prints what it did.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pkt.h"

#define BATCH	64
#define MAX_DST	1024

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int sa4(const char *a, int port, struct sockaddr_in *s)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	return inet_pton(AF_INET, a, &s->sin_addr) == 1 ? 0 : -1;
}

static int do_gen(const char *src, int sport, const char *dst, int dport, uint32_t ssrc, int rate,
		  int seconds, int size)
{
	struct sockaddr_in s, d;
	static uint8_t bufs[BATCH][1600];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct timespec next;
	long long sent = 0, total = (long long)rate * seconds, tick = 0;
	int fd, i, one = 1;
	uint16_t seq = 0;

	if (sa4(src, sport, &s) || sa4(dst, dport, &d))
		return 2;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&s, sizeof(s))) {
		perror("udp-relay gen: bind");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (sent < total && !stop) {
		/* packets due by the end of this 1 ms tick */
		long long due = (long long)rate * (tick + 1) / 1000;
		int n = due - sent > BATCH ? BATCH : (int)(due - sent);

		for (i = 0; i < n; i++) {
			size_t len = rtp_build(bufs[i], ssrc, seq++, 96, size);

			iov[i].iov_base = bufs[i];
			iov[i].iov_len = len;
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_name = &d;
			m[i].msg_hdr.msg_namelen = sizeof(d);
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		if (n > 0) {
			int r = sendmmsg(fd, m, n, 0);

			if (r > 0)
				sent += r;
			else if (r < 0 && errno != ENOBUFS && errno != EAGAIN) {
				perror("udp-relay gen: sendmmsg");
				return 1;
			}
			if (due - sent > BATCH)	/* fell behind: do not accumulate */
				sent = due - BATCH;
		}
		tick++;
		next.tv_nsec += 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	printf("gen: sent %lld\n", sent);
	return 0;
}

static int do_relay(int port, uint32_t ssrc, const char *origin, int origin_port,
		    const char *dsts_file, int echo)
{
	static struct sockaddr_in dst[MAX_DST + 1];
	static uint8_t bufs[BATCH][2048];
	static struct mmsghdr out[MAX_DST + 1];
	struct sockaddr_in any, from[BATCH], orig;
	struct mmsghdr in[BATCH];
	struct iovec iov[BATCH], oiov;
	long long rx = 0, copies = 0, dropped = 0;
	char addr[64];
	int fd, n_dst = 0, i, j, p;
	FILE *f;

	if (sa4(origin, origin_port, &orig))
		return 2;
	f = fopen(dsts_file, "r");
	if (!f) {
		perror(dsts_file);
		return 2;
	}
	while (n_dst < MAX_DST && fscanf(f, "%63s %d", addr, &p) == 2)
		if (sa4(addr, p, &dst[n_dst++]))
			return 2;
	fclose(f);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sa4("0.0.0.0", port, &any);
	if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof(any))) {
		perror("udp-relay: bind");
		return 1;
	}
	{
		int sz = 16 << 20;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	}
	{
		/* no SA_RESTART: a signal ends the blocking recvmmsg() */
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	while (!stop) {
		int n;

		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			memset(&in[i], 0, sizeof(in[i]));
			in[i].msg_hdr.msg_name = &from[i];
			in[i].msg_hdr.msg_namelen = sizeof(from[i]);
			in[i].msg_hdr.msg_iov = &iov[i];
			in[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++) {
			const uint8_t *b = bufs[i];
			unsigned int len = in[i].msg_len, k = 0;

			rx++;
			if (len < 12 || (b[0] >> 6) != 2 ||
			    (uint32_t)(b[8] << 24 | b[9] << 16 | b[10] << 8 | b[11]) != ssrc ||
			    from[i].sin_addr.s_addr != orig.sin_addr.s_addr ||
			    from[i].sin_port != orig.sin_port) {
				dropped++;
				continue;
			}
			oiov.iov_base = bufs[i];
			oiov.iov_len = len;
			for (j = 0; j < n_dst + echo; j++) {
				memset(&out[k], 0, sizeof(out[k]));
				out[k].msg_hdr.msg_name = j < n_dst ? &dst[j] : &from[i];
				out[k].msg_hdr.msg_namelen = sizeof(dst[0]);
				out[k].msg_hdr.msg_iov = &oiov;
				out[k].msg_hdr.msg_iovlen = 1;
				k++;
			}
			for (j = 0; j < (int)k;) {
				int r = sendmmsg(fd, out + j, k - j, 0);

				if (r <= 0)
					break;
				j += r;
				copies += r;
			}
		}
	}
	printf("relay: received %lld, dropped %lld, sent %lld\n", rx, dropped, copies);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "src", 1, NULL, 1 }, { "sport", 1, NULL, 2 }, { "dst", 1, NULL, 3 },
		{ "dport", 1, NULL, 4 }, { "ssrc", 1, NULL, 5 }, { "rate", 1, NULL, 6 },
		{ "seconds", 1, NULL, 7 }, { "size", 1, NULL, 8 }, { "port", 1, NULL, 9 },
		{ "origin", 1, NULL, 10 }, { "origin-port", 1, NULL, 11 }, { "dsts", 1, NULL, 12 },
		{ "no-echo", 0, NULL, 13 }, {}
	};
	const char *src = NULL, *dst = NULL, *origin = NULL, *dsts = NULL;
	int sport = 0, dport = 0, rate = 0, seconds = 0, size = 160, port = 0, oport = 0, echo = 1, c;
	uint32_t ssrc = 0;

	if (argc < 2)
		goto usage;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 1: src = optarg; break;
		case 2: sport = atoi(optarg); break;
		case 3: dst = optarg; break;
		case 4: dport = atoi(optarg); break;
		case 5: ssrc = strtoul(optarg, NULL, 0); break;
		case 6: rate = atoi(optarg); break;
		case 7: seconds = atoi(optarg); break;
		case 8: size = atoi(optarg); break;
		case 9: port = atoi(optarg); break;
		case 10: origin = optarg; break;
		case 11: oport = atoi(optarg); break;
		case 12: dsts = optarg; break;
		case 13: echo = 0; break;
		default: goto usage;
		}
	}
	if (size < 0 || size > 1400)
		goto usage;
	if (!strcmp(argv[1], "gen") && src && dst && sport && dport && rate > 0 && seconds > 0)
		return do_gen(src, sport, dst, dport, ssrc, rate, seconds, size);
	if (!strcmp(argv[1], "relay") && port && origin && oport && dsts)
		return do_relay(port, ssrc, origin, oport, dsts, echo);
usage:
	fprintf(stderr, "usage: udp-relay gen --src A --sport P --dst A --dport P --ssrc N --rate PPS "
		"--seconds S [--size B]\n"
		"       udp-relay relay --port P --ssrc N --origin A --origin-port P --dsts FILE "
		"[--no-echo]\n");
	return 2;
}
