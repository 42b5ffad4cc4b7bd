/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pkt.h - build test frames and check their checksums, from scratch
 * (RFC 1071 sums over the whole header / pseudo header + datagram), so the
 * tests never trust the incremental updates they are checking.
 */
#ifndef GC_TEST_PKT_H
#define GC_TEST_PKT_H

#include <arpa/inet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PKT_MAX	2048

/*
 * The MAC address of interface @name in this network namespace, for the
 * frames a test builds (not /sys/class/net: sysfs shows the namespace of
 * whoever mounted it). 0, or -1 with errno set.
 */
static inline int if_mac(const char *name, uint8_t mac[6])
{
	struct ifreq ifr = {};
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ret = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (ret)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

struct pkt_spec {
	uint8_t  dmac[6], smac[6];
	uint16_t vlan_tci;	/* 0: untagged */
	uint8_t  family;	/* 4 or 6 */
	uint8_t  saddr[16], daddr[16];
	uint16_t sport, dport;	/* host order */
	uint8_t  ttl;
	uint16_t ip_id;
	uint8_t  zero_csum;	/* IPv4: leave the UDP checksum 0 */
	uint8_t  ip_opts_len;	/* IPv4: this many bytes of NOP options (multiple of 4) */
	const uint8_t *payload;	/* UDP payload (RTP header + media) */
	size_t   payload_len;
};

/* Offsets of a built frame. */
struct pkt_layout {
	size_t l3, l4, payload, len;
};

static inline uint32_t csum_add_bytes(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t csum_fold32(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Ones' complement sum of the pseudo header + UDP datagram, folded. */
static inline uint16_t udp_sum(int family, const uint8_t *saddr, const uint8_t *daddr,
			       const uint8_t *udp, size_t udp_len)
{
	uint32_t sum = 0;
	int alen = family == 4 ? 4 : 16;

	sum = csum_add_bytes(sum, saddr, alen);
	sum = csum_add_bytes(sum, daddr, alen);
	sum += 17;		/* IPPROTO_UDP */
	sum += (uint32_t)udp_len;
	sum = csum_add_bytes(sum, udp, udp_len);
	return csum_fold32(sum);
}

/* Build the frame; returns its length (0 if it does not fit). */
static inline size_t pkt_build(const struct pkt_spec *s, uint8_t *buf, struct pkt_layout *lay)
{
	size_t off = 0, l3, l4, ulen = 8 + s->payload_len;
	uint16_t v;

	if (14 + 4 + 60 + ulen > PKT_MAX || s->ip_opts_len % 4 || s->ip_opts_len > 40)
		return 0;
	memcpy(buf, s->dmac, 6);
	memcpy(buf + 6, s->smac, 6);
	off = 12;
	if (s->vlan_tci) {
		buf[off++] = 0x81;
		buf[off++] = 0x00;
		buf[off++] = s->vlan_tci >> 8;
		buf[off++] = s->vlan_tci & 0xff;
	}
	v = s->family == 4 ? 0x0800 : 0x86dd;
	buf[off++] = v >> 8;
	buf[off++] = v & 0xff;
	l3 = off;
	if (s->family == 4) {
		uint8_t *ip = buf + l3;
		size_t hl = 20 + s->ip_opts_len;
		uint16_t tot = hl + ulen, c;

		memset(ip, 0, 20);
		memset(ip + 20, 1, s->ip_opts_len);	/* IPOPT_NOOP */
		ip[0] = 0x40 | hl / 4;
		ip[2] = tot >> 8;
		ip[3] = tot & 0xff;
		ip[4] = s->ip_id >> 8;
		ip[5] = s->ip_id & 0xff;
		ip[6] = 0x40;	/* DF */
		ip[8] = s->ttl;
		ip[9] = 17;
		memcpy(ip + 12, s->saddr, 4);
		memcpy(ip + 16, s->daddr, 4);
		c = ~csum_fold32(csum_add_bytes(0, ip, hl));
		ip[10] = c >> 8;
		ip[11] = c & 0xff;
		l4 = l3 + hl;
	} else {
		uint8_t *ip = buf + l3;

		memset(ip, 0, 40);
		ip[0] = 0x60;
		ip[4] = ulen >> 8;
		ip[5] = ulen & 0xff;
		ip[6] = 17;
		ip[7] = s->ttl;
		memcpy(ip + 8, s->saddr, 16);
		memcpy(ip + 24, s->daddr, 16);
		l4 = l3 + 40;
	}
	{
		uint8_t *u = buf + l4;
		uint16_t c;

		u[0] = s->sport >> 8;
		u[1] = s->sport & 0xff;
		u[2] = s->dport >> 8;
		u[3] = s->dport & 0xff;
		u[4] = ulen >> 8;
		u[5] = ulen & 0xff;
		u[6] = u[7] = 0;
		memcpy(u + 8, s->payload, s->payload_len);
		if (!(s->family == 4 && s->zero_csum)) {
			c = ~udp_sum(s->family, s->saddr, s->daddr, u, ulen);
			if (c == 0)
				c = 0xffff;
			u[6] = c >> 8;
			u[7] = c & 0xff;
		}
	}
	if (lay) {
		lay->l3 = l3;
		lay->l4 = l4;
		lay->payload = l4 + 8;
		lay->len = l4 + ulen;
	}
	return l4 + ulen;
}

/*
 * Check the IPv4 header checksum and the UDP checksum of an Ethernet frame
 * (optionally VLAN-tagged). Returns 0 if valid, -1 otherwise (with *why).
 * An IPv4 UDP checksum of 0 ("none") is valid; an IPv6 one is not.
 */
static inline int pkt_check_csums(const uint8_t *f, size_t len, const char **why)
{
	size_t off = 12, l4, ulen;
	uint16_t proto;
	int family;
	const uint8_t *sa, *da;

	*why = "short frame";
	if (len < 14)
		return -1;
	proto = f[off] << 8 | f[off + 1];
	if (proto == 0x8100 || proto == 0x88a8) {
		off += 4;
		if (len < off + 2)
			return -1;
		proto = f[off] << 8 | f[off + 1];
	}
	off += 2;
	if (proto == 0x0800) {
		size_t hl;

		family = 4;
		if (len < off + 20)
			return -1;
		hl = (f[off] & 0xf) * 4;
		if (hl < 20 || len < off + hl)
			return -1;
		if (csum_fold32(csum_add_bytes(0, f + off, hl)) != 0xffff) {
			*why = "bad IPv4 header checksum";
			return -1;
		}
		if (f[off + 9] != 17) {
			*why = "not UDP";
			return -1;
		}
		if ((size_t)(f[off + 2] << 8 | f[off + 3]) > len - off) {
			*why = "IPv4 total length past the frame's end (a receiver drops it)";
			return -1;
		}
		sa = f + off + 12;
		da = f + off + 16;
		l4 = off + hl;
	} else if (proto == 0x86dd) {
		family = 6;
		if (len < off + 40)
			return -1;
		if (f[off + 6] != 17) {
			*why = "not UDP (or IPv6 extension headers)";
			return -1;
		}
		if ((size_t)(f[off + 4] << 8 | f[off + 5]) + 40 > len - off) {
			*why = "IPv6 payload length past the frame's end (a receiver drops it)";
			return -1;
		}
		sa = f + off + 8;
		da = f + off + 24;
		l4 = off + 40;
	} else {
		*why = "not IP";
		return -1;
	}
	if (len < l4 + 8)
		return -1;
	ulen = f[l4 + 4] << 8 | f[l4 + 5];
	if (ulen < 8 || len < l4 + ulen) {
		*why = "UDP length beyond the frame";
		return -1;
	}
	if (family == 4 && f[l4 + 6] == 0 && f[l4 + 7] == 0)
		return 0;
	if (family == 6 && f[l4 + 6] == 0 && f[l4 + 7] == 0) {
		*why = "IPv6 UDP checksum 0";
		return -1;
	}
	if (udp_sum(family, sa, da, f + l4, ulen) != 0xffff) {
		*why = "bad UDP checksum";
		return -1;
	}
	return 0;
}

/* An RTP v2 header (12 bytes) + @media_len bytes of a pattern derived from
 * @ssrc and @seq, so receivers can regenerate what they must get. */
static inline size_t rtp_build(uint8_t *buf, uint32_t ssrc, uint16_t seq, uint8_t pt,
			       size_t media_len)
{
	size_t i;

	buf[0] = 0x80;
	buf[1] = pt & 0x7f;
	buf[2] = seq >> 8;
	buf[3] = seq & 0xff;
	buf[4] = 0;
	buf[5] = 0;
	buf[6] = seq >> 8;
	buf[7] = seq & 0xff;	/* timestamp = seq */
	buf[8] = ssrc >> 24;
	buf[9] = ssrc >> 16;
	buf[10] = ssrc >> 8;
	buf[11] = ssrc;
	for (i = 0; i < media_len; i++)
		buf[12 + i] = (uint8_t)(ssrc * 131 + seq * 31 + i * 7);
	return 12 + media_len;
}

/* ---- the frame corpus (bpf/tests/corpus/README.md) ---------------------- */

/* $GC_CORPUS, else bpf/tests/corpus/frames.txt next to this program's
 * bpf/.output directory. */
static inline const char *corpus_path(void)
{
	static char path[4096 + 32];
	const char *env = getenv("GC_CORPUS");
	char exe[4096];
	ssize_t n;

	if (env)
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "bpf/tests/corpus/frames.txt";
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(path, sizeof(path), "%s/../tests/corpus/frames.txt", exe);
	return path;
}

#define CORPUS_FIELDS	8

/* Split a frame line (newline included) into its fields and decode the
 * frame into @f; 0, or -1 for a comment, '@' line or a malformed line. */
static inline int corpus_line(char *line, char *field[CORPUS_FIELDS], uint8_t *f, size_t *len)
{
	char *p = line, *hex;
	int k;

	if (line[0] == '#' || line[0] == '@' || line[0] == '\n')
		return -1;
	line[strcspn(line, "\n")] = 0;
	for (k = 0; k < CORPUS_FIELDS; k++)
		field[k] = strsep(&p, "\t");
	if (!field[CORPUS_FIELDS - 1])
		return -1;
	hex = field[CORPUS_FIELDS - 1];
	for (*len = 0; hex[2 * *len] && hex[2 * *len + 1] && *len < PKT_MAX; (*len)++)
		sscanf(hex + 2 * *len, "%2hhx", &f[*len]);
	return 0;
}

#endif /* GC_TEST_PKT_H */
